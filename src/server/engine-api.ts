// What the server needs of the workflow engine: its public surface, so tests can run the server on a
// stand-in and the server never reaches into the engine's internals.
import type { WorkflowEngine } from '../workflow/engine.js';

export type Engine = Pick<WorkflowEngine, 'objectInfo' | 'objectInfoFor' | 'validate' | 'execute' | 'interrupt' | 'currentNode' | 'free'>;
