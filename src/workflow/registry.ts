// Node classes by name, and their `/object_info` form exactly as ComfyUI prints it (key names and
// order, combos as bare lists, file lists read from the host's folders at the time of asking).
import type { EngineHost, FileListSource, InputOptions, InputSpec, NodeDef } from './types.js';

/** An input as validation sees it: the type (a classic combo's list resolved) and its options. */
export interface ResolvedInput {
  readonly name: string;
  readonly category: 'required' | 'optional';
  readonly type: string | readonly string[];
  readonly options: InputOptions;
  /** The `[type, options]` pair ComfyUI reports as `input_config`. */
  readonly config: readonly unknown[];
}

const isFileList = (t: unknown): t is FileListSource => typeof t === 'object' && t !== null && !Array.isArray(t) && 'files' in t;

function resolveSpec(spec: InputSpec, host: EngineHost): [string | readonly string[], InputOptions | undefined] {
  const [type, options] = spec;
  const t = isFileList(type) ? host.listFiles(type.files) : type;
  if (options && isFileList(options.options)) return [t, { ...options, options: host.listFiles(options.options.files) }];
  return [t, options];
}

export class NodeRegistry {
  private readonly byName = new Map<string, NodeDef>();

  constructor(nodes: readonly NodeDef[]) {
    for (const n of nodes) {
      if (this.byName.has(n.name)) throw new Error(`node class ${n.name} is declared twice`);
      this.byName.set(n.name, n);
    }
  }

  get(name: string): NodeDef | undefined {
    return this.byName.get(name);
  }

  get names(): string[] {
    return [...this.byName.keys()];
  }

  /** Required then optional inputs, in declaration order, with file lists resolved. */
  inputs(def: NodeDef, host: EngineHost): ResolvedInput[] {
    const out: ResolvedInput[] = [];
    for (const category of ['required', 'optional'] as const) {
      for (const [name, spec] of Object.entries(def.input[category] ?? {})) {
        const [type, options] = resolveSpec(spec, host);
        out.push({ name, category, type, options: options ?? {}, config: options ? [type, options] : [type, {}] });
      }
    }
    return out;
  }

  info(def: NodeDef, host: EngineHost): Record<string, unknown> {
    const input: Record<string, unknown> = {};
    const order: Record<string, string[]> = {};
    for (const category of ['required', 'optional'] as const) {
      const specs = def.input[category];
      if (!specs) continue;
      input[category] = Object.fromEntries(Object.entries(specs).map(([n, s]) => {
        const [type, options] = resolveSpec(s, host);
        return [n, options ? [type, options] : [type]];
      }));
      order[category] = Object.keys(specs);
    }
    if (def.input.hidden) {
      input.hidden = { ...def.input.hidden };
      order.hidden = Object.keys(def.input.hidden);
    }
    const info: Record<string, unknown> = {
      input, input_order: order,
      output: [...def.output],
      output_is_list: def.outputIsList ? [...def.outputIsList] : def.output.map(() => false),
      output_name: [...(def.outputName ?? def.output)],
    };
    if (def.newApi && def.outputTooltips) info.output_tooltips = [...def.outputTooltips];
    Object.assign(info, {
      name: def.name, display_name: def.displayName, description: def.description,
      python_module: def.pythonModule ?? 'nodes', category: def.category, output_node: def.outputNode ?? false,
    });
    if (def.newApi) Object.assign(info, { deprecated: def.deprecated ?? false, experimental: def.experimental ?? false, api_node: false });
    else {
      if (def.deprecated) info.deprecated = true;
      if (def.outputTooltips) info.output_tooltips = [...def.outputTooltips];
    }
    return info;
  }

  objectInfo(host: EngineHost): Record<string, unknown> {
    return Object.fromEntries([...this.byName.values()].map((d) => [d.name, this.info(d, host)]));
  }
}
