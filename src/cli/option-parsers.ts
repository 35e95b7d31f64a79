/** Parsers for command-line option values; each throws commander's InvalidArgumentError on bad input. */
import { InvalidArgumentError } from 'commander';

/** Parses a whole number of at least `minimum`. */
export function parseInteger(value: string, minimum: number): number {
  const number = Number(value);
  if (!/^\s*-?\d+\s*$/.test(value) || !Number.isSafeInteger(number) || number < minimum) {
    throw new InvalidArgumentError(`expected a whole number of at least ${minimum}`);
  }
  return number;
}

export function parseNonNegativeInteger(value: string): number {
  return parseInteger(value, 0);
}

export function parsePositiveInteger(value: string): number {
  return parseInteger(value, 1);
}

/** Appends a value of a repeatable option to the values given before it. */
export function collectValues(value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), value];
}

/** Splits KEY=VALUE at the first "=", so the value may contain "=". */
export function parseKeyValue(value: string): [string, string] {
  const separator = value.indexOf('=');
  if (separator <= 0) throw new InvalidArgumentError('expected KEY=VALUE with a non-empty KEY');
  return [value.slice(0, separator), value.slice(separator + 1)];
}

/** Collects repeatable KEY=VALUE options into a map; a later value for a key replaces an earlier one. */
export function collectKeyValues(value: string, previous: Map<string, string> | undefined): Map<string, string> {
  const [key, entryValue] = parseKeyValue(value);
  return new Map(previous ?? []).set(key, entryValue);
}

/**
 * Returns the enum value named by a lowercase choice, such as "community"
 * for VISIBILITY_COMMUNITY. Commander's .choices() has already rejected any
 * other word, so a miss is a programming error.
 */
export function enumValueOf<T>(enumObject: Record<string, T | string>, prefix: string, choice: string): T {
  const value = enumObject[`${prefix}${choice.toUpperCase()}`];
  if (value === undefined || typeof value === 'string') throw new Error(`no ${prefix}${choice.toUpperCase()} in the enum`);
  return value;
}

/** Lists the lowercase choices of an enum, leaving out its UNSPECIFIED value. */
export function enumChoices(enumObject: Record<string, unknown>, prefix: string): string[] {
  return Object.keys(enumObject)
    .filter((name) => name.startsWith(prefix) && name !== `${prefix}UNSPECIFIED`)
    .map((name) => name.slice(prefix.length).toLowerCase());
}
