// What the server needs of the workflow engine: its public surface, so tests can run the server on a
// stand-in and the server never reaches into the engine's internals.
import type { WorkflowEngine } from '../workflow/engine.js';
import type { ResourceCache } from '../workflow/resource-cache.js';

/** `resources`: the engine's loaded models, shared with the A1111 / OpenAI jobs (a stand-in may lack it). */
export type Engine = Pick<WorkflowEngine, 'objectInfo' | 'objectInfoFor' | 'validate' | 'execute' | 'interrupt' | 'currentNode' | 'free'> & { readonly resources?: ResourceCache };
