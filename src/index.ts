export * from './tensor/index.js';
export type { StateDict, TensorInfo } from './formats/state-dict.js';
