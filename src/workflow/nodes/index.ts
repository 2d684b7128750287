// Every built-in node class. Classes whose model families are not supported yet (CLIP vision,
// unCLIP, style models, GLIGEN) are absent, so `/object_info` never lists a stub.
import type { NodeDef } from '../types.js';
import { clipNodes, conditioningNodes } from './conditioning.js';
import { compositeNodes } from './composite.js';
import { controlNetNodes } from './controlnet.js';
import { customSamplingNodes } from './custom-sampling.js';
import { imageNodes } from './image.js';
import { latentFileNodes } from './latent-files.js';
import { latentNodes } from './latent.js';
import { loaderNodes } from './loaders.js';
import { maskNodes } from './mask.js';
import { mergingNodes } from './merging.js';
import { postprocessNodes } from './postprocess.js';
import { samplingNodes } from './sampling.js';
import { sdxlNodes } from './sdxl.js';

export function builtinNodes(): NodeDef[] {
  return [...loaderNodes, ...clipNodes, ...conditioningNodes, ...latentNodes, ...latentFileNodes, ...samplingNodes, ...customSamplingNodes, ...imageNodes, ...postprocessNodes, ...compositeNodes, ...maskNodes, ...mergingNodes, ...sdxlNodes, ...controlNetNodes];
}
