// Prompt validation with ComfyUI's rules and answers (execution.validate_prompt / validate_inputs):
// the same checks in the same order, the same error types, messages and details, values converted
// the way Python converts them. Cycles, on which ComfyUI overflows its stack, are found explicitly.
import { pyBool, PyConversionError, pyFloat, pyFloatOf, pyInt, pyRepr, pyStr } from './py-format.js';
import type { NodeRegistry } from './registry.js';
import type { ApiPrompt, EngineHost, NodeErrors, PromptError, ValidationResult } from './types.js';

type NodeResult = { valid: boolean; errors: PromptError[] };

/** A failure that ComfyUI raises as a Python exception (a KeyError on a missing node, say). */
class PyException extends Error {
  constructor(readonly pyType: string, message: string) {
    super(message);
  }
}

class CycleFound extends Error {}

const topError = (type: string, message: string, details = ''): PromptError => ({ type, message, details, extra_info: {} });

/** ComfyUI's validate_node_input: exact match, or comma-separated type sets that overlap, `*` matching anything. */
export function typesMatch(received: unknown, expected: string | readonly string[]): boolean {
  if (JSON.stringify(received) === JSON.stringify(expected)) return true;
  if (typeof received !== 'string' || typeof expected !== 'string') return false;
  const r = new Set(received.split(',').map((t) => t.trim()));
  const e = new Set(expected.split(',').map((t) => t.trim()));
  if (r.has('*') || e.has('*')) return true;
  for (const t of r) if (e.has(t)) return true;
  return false;
}

/** Prints a number as Python holds it after conversion for an input of this type. */
const printValue = (v: unknown, type: unknown) => pyStr(v, type === 'FLOAT');

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

export async function validatePrompt(
  raw: unknown, registry: NodeRegistry, host: EngineHost, partialTargets?: readonly string[],
): Promise<ValidationResult> {
  if (!isObject(raw) || !Object.values(raw).every(isObject)) {
    return {
      ok: false, nodeErrors: {},
      error: topError('invalid_prompt', 'Prompt is not an API-format graph', 'expected an object of nodes {"id": {"class_type": …, "inputs": {…}}}; a UI-format workflow (nodes/links) must be exported with "Save (API format)"'),
    };
  }
  // Validation converts widget values in place; work on a copy so the caller's object stays as sent.
  const prompt = structuredClone(raw) as ApiPrompt;
  const outputs: string[] = [];
  for (const [id, node] of Object.entries(prompt)) {
    if (!('class_type' in node)) {
      return { ok: false, nodeErrors: {}, error: topError('invalid_prompt', 'Cannot execute because a node is missing the class_type property.', `Node ID '#${id}'`) };
    }
    const def = registry.get(String(node.class_type));
    if (!def) {
      return { ok: false, nodeErrors: {}, error: topError('invalid_prompt', `Cannot execute because node ${String(node.class_type)} does not exist.`, `Node ID '#${id}'`) };
    }
    if (!isObject(node.inputs)) node.inputs = {};
    if (def.outputNode && (!partialTargets || partialTargets.includes(id))) outputs.push(id);
  }
  if (outputs.length === 0) return { ok: false, nodeErrors: {}, error: topError('prompt_no_outputs', 'Prompt has no outputs') };

  const validated = new Map<string, NodeResult>();
  const visiting = new Set<string>();

  async function validateNode(id: string): Promise<NodeResult> {
    const done = validated.get(id);
    if (done) return done;
    if (visiting.has(id)) throw new CycleFound();
    visiting.add(id);
    try {
      const node = prompt[id];
      const def = registry.get(node.class_type)!;
      const inputs = node.inputs;
      const errors: PromptError[] = [];
      let valid = true;
      const custom = new Set(def.validateInputs?.inputs ?? []);
      for (const spec of registry.inputs(def, host)) {
        const x = spec.name;
        const info = spec.config;
        if (!(x in inputs)) {
          if (spec.category === 'required') errors.push({ type: 'required_input_missing', message: 'Required input is missing', details: x, extra_info: { input_name: x } });
          continue;
        }
        let val = inputs[x];
        if (Array.isArray(val)) {
          if (val.length !== 2) {
            errors.push({ type: 'bad_linked_input', message: 'Bad linked input, must be a length-2 list of [node_id, slot_index]', details: x, extra_info: { input_name: x, input_config: info, received_value: val } });
            continue;
          }
          const [oid, slot] = val as [unknown, unknown];
          const source = prompt[String(oid)];
          if (!source || typeof oid === 'object') throw new PyException('KeyError', pyRepr(oid));
          const sourceDef = registry.get(source.class_type)!;
          const receivedType = typeof slot === 'number' && Number.isInteger(slot) ? sourceDef.output.at(slot) : undefined;
          if (receivedType === undefined) throw new PyException('IndexError', 'tuple index out of range');
          if (!typesMatch(receivedType, spec.type)) {
            errors.push({
              type: 'return_type_mismatch', message: 'Return type mismatch between linked nodes',
              details: `${x}, received_type(${receivedType}) mismatch input_type(${pyStr(spec.type)})`,
              extra_info: { input_name: x, input_config: info, received_type: receivedType, linked_node: val },
            });
            continue;
          }
          try {
            const r = await validateNode(String(oid));
            if (!r.valid) valid = false;
          } catch (err) {
            if (err instanceof CycleFound) throw err;
            valid = false;
            const e = err instanceof PyException ? err : new PyException('Exception', (err as Error).message);
            validated.set(String(oid), {
              valid: false,
              errors: [{
                type: 'exception_during_inner_validation', message: 'Exception when validating inner node', details: e.message,
                extra_info: { input_name: x, input_config: info, exception_message: e.message, exception_type: e.pyType, traceback: [], linked_node: val },
              }],
            });
          }
          continue;
        }
        try {
          if (isObject(val) && '__value__' in val) {
            val = val.__value__;
            inputs[x] = val;
          }
          if (spec.type === 'INT') val = pyInt(val);
          else if (spec.type === 'FLOAT') val = pyFloatOf(val);
          else if (spec.type === 'STRING') val = pyStr(val);
          else if (spec.type === 'BOOLEAN') val = pyBool(val);
          inputs[x] = val;
        } catch (err) {
          if (!(err instanceof PyConversionError)) throw err;
          errors.push({
            type: 'invalid_input_type', message: `Failed to convert an input value to a ${pyStr(spec.type)} value`,
            details: `${x}, ${pyStr(val)}, ${err.message}`,
            extra_info: { input_name: x, input_config: info, received_value: val, exception_message: err.message },
          });
          continue;
        }
        if (custom.has(x)) continue;
        const o = spec.options;
        const bound = (b: number) => (spec.type === 'FLOAT' ? pyFloat(b) : String(b));
        if (typeof o.min === 'number' && typeof val === 'number' && val < o.min) {
          errors.push({ type: 'value_smaller_than_min', message: `Value ${printValue(val, spec.type)} smaller than min of ${bound(o.min)}`, details: x, extra_info: { input_name: x, input_config: info, received_value: val } });
          continue;
        }
        if (typeof o.max === 'number' && typeof val === 'number' && val > o.max) {
          errors.push({ type: 'value_bigger_than_max', message: `Value ${printValue(val, spec.type)} bigger than max of ${bound(o.max)}`, details: x, extra_info: { input_name: x, input_config: info, received_value: val } });
          continue;
        }
        if (Array.isArray(spec.type) && !spec.type.includes(val as string)) {
          const list = spec.type as readonly string[];
          const long = list.length > 20;
          errors.push({
            type: 'value_not_in_list', message: 'Value not in list',
            details: `${x}: '${pyStr(val)}' not in ${long ? `(list of length ${list.length})` : pyRepr(list)}`,
            extra_info: { input_name: x, input_config: long ? null : info, received_value: val },
          });
          continue;
        }
      }
      if (def.validateInputs) {
        const names = def.validateInputs.inputs.filter((n) => n in inputs && !Array.isArray(inputs[n]));
        if (names.length) {
          const problem = await def.validateInputs.check(inputs, host);
          if (problem !== undefined) {
            for (const n of names) errors.push({ type: 'custom_validation_failed', message: 'Custom validation failed for node', details: `${n} - ${problem}`, extra_info: { input_name: n } });
          }
        }
      }
      const result = { valid: valid && errors.length === 0, errors };
      validated.set(id, result);
      return result;
    } finally {
      visiting.delete(id);
    }
  }

  const good: string[] = [];
  const nodeErrors: Record<string, NodeErrors> = {};
  const failedOwn: [string, PromptError[]][] = [];
  let cycle = false;
  for (const o of outputs) {
    let result: NodeResult;
    try {
      result = await validateNode(o);
    } catch (err) {
      if (err instanceof CycleFound) {
        // ComfyUI's recursion overflows and its error is overwritten on the way back: no node errors.
        cycle = true;
        continue;
      }
      const e = err instanceof PyException ? err : new PyException('Exception', (err as Error).message);
      result = { valid: false, errors: [{ type: 'exception_during_validation', message: 'Exception when validating node', details: e.message, extra_info: { exception_type: e.pyType, traceback: [] } }] };
      validated.set(o, result);
    }
    if (result.valid) {
      good.push(o);
      continue;
    }
    if (result.errors.length === 0 && ![...validated.values()].some((r) => !r.valid && r.errors.length)) continue;
    if (result.errors.length) failedOwn.push([o, result.errors]);
    for (const [id, r] of validated) {
      if (r.valid || r.errors.length === 0) continue;
      nodeErrors[id] ??= { errors: r.errors, dependent_outputs: [], class_type: prompt[id].class_type };
      if (!nodeErrors[id].dependent_outputs.includes(o)) nodeErrors[id].dependent_outputs.push(o);
    }
  }
  if (good.length === 0) {
    const details = failedOwn.flatMap(([, errs]) => errs.map((e) => `${e.message}: ${e.details}`)).join('\n');
    return {
      ok: false, nodeErrors: cycle ? {} : nodeErrors,
      error: topError('prompt_outputs_failed_validation', 'Prompt outputs failed validation', cycle && !details ? '' : details),
    };
  }
  return { ok: true, prompt, outputs: good, nodeErrors };
}
