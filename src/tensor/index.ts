export * from './dtype.js';
export * from './half.js';
export * from './tensor.js';
