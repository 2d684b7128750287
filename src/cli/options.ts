import { InvalidArgumentError } from 'commander';

/** commander parser for integer options, with the option named in the error. */
export function intOption(name: string, min = -Infinity, max = Infinity) {
  return (v: string): number => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < min || n > max) {
      throw new InvalidArgumentError(`${name} must be an integer${min > -Infinity ? ` from ${min}` : ''}${max < Infinity ? ` to ${max}` : ''}, got '${v}'`);
    }
    return n;
  };
}

export function floatOption(name: string, min = -Infinity, max = Infinity) {
  return (v: string): number => {
    const n = Number(v);
    if (v.trim() === '' || !Number.isFinite(n) || n < min || n > max) {
      throw new InvalidArgumentError(`${name} must be a number${min > -Infinity ? ` from ${min}` : ''}${max < Infinity ? ` to ${max}` : ''}, got '${v}'`);
    }
    return n;
  };
}

