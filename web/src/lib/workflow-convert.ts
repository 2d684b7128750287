// ComfyUI's two workflow formats and the conversion between them, given `/object_info`:
//  - API format: `{ id: { class_type, inputs: { name: value | [fromId, slot] } } }` (what /prompt runs)
//  - UI format (`workflow`): litegraph nodes with positions, `widgets_values` in widget order, and a
//    link table `[id, fromNode, fromSlot, toNode, toSlot, type]`.
// The widget order is the node's input order (required then optional) restricted to widget types,
// with the front-end's extra "control after generate" value after every seed.

export type InputSpec = [unknown, Record<string, unknown>?];
export interface NodeInfo {
  input: { required?: Record<string, InputSpec>; optional?: Record<string, InputSpec> };
  input_order?: { required?: string[]; optional?: string[] };
  output: string[];
  output_name?: string[];
  display_name?: string;
  category?: string;
}
export type ObjectInfo = Record<string, NodeInfo>;

export type ApiGraph = Record<string, { class_type: string; inputs: Record<string, unknown>; _meta?: { title?: string } }>;

export interface UiNode {
  id: number;
  type: string;
  pos: [number, number];
  size?: [number, number];
  mode?: number;
  title?: string;
  inputs?: { name: string; type: string; link: number | null; widget?: { name: string } }[];
  outputs?: { name: string; type: string; links: number[] | null; slot_index?: number }[];
  widgets_values?: unknown[] | Record<string, unknown>;
}
export type UiLink = [number, number, number, number, number, string];
export interface UiWorkflow {
  last_node_id: number;
  last_link_id: number;
  nodes: UiNode[];
  links: UiLink[];
  groups?: unknown[];
  version: number;
  extra?: Record<string, unknown>;
}

const WIDGET_TYPES = new Set(['INT', 'FLOAT', 'STRING', 'BOOLEAN', 'COMBO']);

export const isWidget = (spec: InputSpec): boolean => Array.isArray(spec[0]) || WIDGET_TYPES.has(String(spec[0]));

/** Inputs in the order the node declares them, with their specs. */
export function orderedInputs(info: NodeInfo): [string, InputSpec][] {
  const out: [string, InputSpec][] = [];
  for (const group of ['required', 'optional'] as const) {
    const specs = info.input[group] ?? {};
    const order = info.input_order?.[group] ?? Object.keys(specs);
    for (const name of order) if (specs[name]) out.push([name, specs[name]]);
  }
  return out;
}

/** ComfyUI's front-end adds a "fixed / randomize" widget after these. */
export const hasSeedControl = (name: string, spec: InputSpec): boolean =>
  spec[0] === 'INT' && (name === 'seed' || name === 'noise_seed' || spec[1]?.control_after_generate === true);

/** …and an "upload" button widget (with the value 'image') after a file combo that takes uploads. */
export const hasUploadWidget = (spec: InputSpec): boolean => spec[1]?.image_upload === true;

const isLink = (v: unknown): v is [string, number] => Array.isArray(v) && v.length === 2 && typeof v[1] === 'number' && (typeof v[0] === 'string' || typeof v[0] === 'number');

/** UI → API: muted (2) and bypassed (4) nodes are dropped; links through Reroute nodes are followed. */
export function uiToApi(wf: UiWorkflow, info: ObjectInfo): ApiGraph {
  const byId = new Map(wf.nodes.map((n) => [n.id, n]));
  const links = new Map(wf.links.map((l) => [l[0], l]));
  const source = (linkId: number): [string, number] | undefined => {
    for (let l = links.get(linkId), hops = 0; l && hops < 1000; hops++) {
      const from = byId.get(l[1]);
      if (!from) return undefined;
      if (from.type !== 'Reroute') return [String(from.id), l[2]];
      const next = from.inputs?.[0]?.link;
      l = next == null ? undefined : links.get(next);
    }
    return undefined;
  };
  const out: ApiGraph = {};
  for (const node of wf.nodes) {
    if (node.type === 'Reroute' || node.mode === 2 || node.mode === 4) continue;
    const spec = info[node.type];
    if (!spec) throw new Error(`node ${node.id}: unknown node type ${node.type} (not in /object_info)`);
    const inputs: Record<string, unknown> = {};
    const linked = new Map((node.inputs ?? []).filter((i) => i.link != null).map((i) => [i.widget?.name ?? i.name, i.link as number]));
    const values = Array.isArray(node.widgets_values) ? node.widgets_values : undefined;
    let k = 0;
    for (const [name, s] of orderedInputs(spec)) {
      const link = linked.get(name);
      if (isWidget(s)) {
        const v = values ? values[k++] : (node.widgets_values as Record<string, unknown> | undefined)?.[name];
        if ((hasSeedControl(name, s) || hasUploadWidget(s)) && values) k++;
        if (link === undefined) {
          if (v !== undefined) inputs[name] = v;
          continue;
        }
      }
      if (link !== undefined) {
        const src = source(link);
        if (src) inputs[name] = src;
      }
    }
    out[String(node.id)] = { class_type: node.type, inputs, ...(node.title ? { _meta: { title: node.title } } : {}) };
  }
  return out;
}

/** API → UI: nodes placed in columns by their depth from the sources, or at `positions` when given. */
export function apiToUi(graph: ApiGraph, info: ObjectInfo, positions: Record<string, [number, number]> = {}): UiWorkflow {
  const ids = Object.keys(graph);
  const numeric = new Map<string, number>();
  let next = Math.max(0, ...ids.map(Number).filter(Number.isInteger)) + 1;
  for (const id of ids) numeric.set(id, Number.isInteger(Number(id)) && Number(id) > 0 ? Number(id) : next++);
  const depth = new Map<string, number>();
  const depthOf = (id: string, seen: Set<string> = new Set()): number => {
    if (depth.has(id)) return depth.get(id)!;
    if (seen.has(id) || !graph[id]) return 0;
    seen.add(id);
    const d = Math.max(-1, ...Object.values(graph[id].inputs).filter(isLink).map((l) => depthOf(String(l[0]), seen))) + 1;
    depth.set(id, d);
    return d;
  };
  const rows = new Map<number, number>();
  const links: UiLink[] = [];
  const nodes: UiNode[] = ids.map((id) => {
    const n = graph[id];
    const spec = info[n.class_type];
    if (!spec) throw new Error(`node ${id}: unknown node type ${n.class_type} (not in /object_info)`);
    const d = depthOf(id);
    const row = rows.get(d) ?? 0;
    rows.set(d, row + 1);
    const inputs: NonNullable<UiNode['inputs']> = [];
    const widgets: unknown[] = [];
    for (const [name, s] of orderedInputs(spec)) {
      const v = n.inputs[name];
      if (isWidget(s)) {
        if (isLink(v)) inputs.push({ name, type: Array.isArray(s[0]) ? 'COMBO' : String(s[0]), link: null, widget: { name } });
        widgets.push(isLink(v) ? null : v ?? s[1]?.default ?? null);
        if (hasSeedControl(name, s)) widgets.push('fixed');
        if (hasUploadWidget(s)) widgets.push('image');
      } else inputs.push({ name, type: String(s[0]), link: null });
    }
    return {
      id: numeric.get(id)!, type: n.class_type, pos: positions[id] ?? [40 + d * 320, 40 + row * 220], size: [280, 120], mode: 0,
      inputs, outputs: spec.output.map((t, slot) => ({ name: spec.output_name?.[slot] ?? t, type: t, links: [], slot_index: slot })),
      widgets_values: widgets, ...(n._meta?.title ? { title: n._meta.title } : {}),
    };
  });
  const nodeOf = new Map(nodes.map((n) => [n.id, n]));
  for (const id of ids) {
    const to = nodeOf.get(numeric.get(id)!)!;
    for (const [name, v] of Object.entries(graph[id].inputs)) {
      if (!isLink(v)) continue;
      const fromId = numeric.get(String(v[0]));
      const from = fromId === undefined ? undefined : nodeOf.get(fromId);
      const slot = to.inputs!.findIndex((i) => i.name === name);
      if (!from || slot < 0 || !from.outputs![v[1]]) continue;
      const linkId = links.length + 1;
      links.push([linkId, from.id, v[1], to.id, slot, from.outputs![v[1]].type]);
      to.inputs![slot].link = linkId;
      from.outputs![v[1]].links!.push(linkId);
    }
  }
  return { last_node_id: Math.max(0, ...nodes.map((n) => n.id)), last_link_id: links.length, nodes, links, groups: [], version: 0.4, extra: {} };
}

/** Which format a parsed JSON file is in. */
export function workflowKind(json: unknown): 'ui' | 'api' | undefined {
  if (!json || typeof json !== 'object') return undefined;
  const o = json as Record<string, unknown>;
  if (Array.isArray(o.nodes) && Array.isArray(o.links)) return 'ui';
  const values = Object.values(o);
  if (values.length > 0 && values.every((v) => v && typeof v === 'object' && typeof (v as { class_type?: unknown }).class_type === 'string')) return 'api';
  return undefined;
}
