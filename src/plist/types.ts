/** A property-list value as certmdm handles it: integers and reals are told apart explicitly. */
export type PlistValue = string | number | boolean | Buffer | Date | PlistReal | PlistValue[] | PlistDict;
export interface PlistDict {
  [key: string]: PlistValue | undefined;
}

/** A real (floating-point) value; a plain number is written as an integer. */
export class PlistReal {
  constructor(readonly value: number) {}
}
