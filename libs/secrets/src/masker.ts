/** What a secret becomes in logs and records. */
export const MASK = '********';

/** Values shorter than this are not masked (masking "a" would destroy every log); see the README. */
export const MIN_MASKED_LENGTH = 4;

/**
 * The text forms of a value to hide: the value itself and its base64 (standard and URL-safe).
 * Base64 depends on where the value starts within a 3-byte group and on the bytes around it,
 * so for each of the three alignments only the characters determined by the value alone are
 * taken: that core appears in the base64 of any text containing the value (e.g. `echo $S | base64`).
 */
export function maskedForms(value: string): string[] {
  if (value.length < MIN_MASKED_LENGTH) return [];
  const forms = new Set<string>([value]);
  const bytes = Buffer.from(value, 'utf8');
  for (let offset = 0; offset < 3; offset++) {
    const encoded = Buffer.concat([Buffer.alloc(offset), bytes]).toString('base64');
    const core = encoded.slice(Math.ceil((8 * offset) / 6), Math.floor((8 * (offset + bytes.length)) / 6));
    if (core.length >= MIN_MASKED_LENGTH) {
      forms.add(core);
      forms.add(core.replace(/\+/g, '-').replace(/\//g, '_'));
    }
  }
  return [...forms];
}

/** A line → line function hiding every form of every value; identity when there is nothing to hide. */
export function buildMasker(values: Iterable<string>): (line: string) => string {
  const forms = new Set<string>();
  for (const v of values) for (const f of maskedForms(v)) forms.add(f);
  if (!forms.size) return (line) => line;
  // Longest first, so that a value containing another is hidden whole.
  const pattern = new RegExp([...forms].sort((a, b) => b.length - a.length).map(escapeRegExp).join('|'), 'g');
  return (line) => line.replace(pattern, MASK);
}

/** Masks every string inside a JSON-like value (step results, messages), keys included. */
export function maskDeep<T>(value: T, mask: (s: string) => string): T {
  if (typeof value === 'string') return mask(value) as T;
  if (Array.isArray(value)) return value.map((v) => maskDeep(v, mask)) as T;
  if (value && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [mask(k), maskDeep(v, mask)])) as T;
  }
  return value;
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
