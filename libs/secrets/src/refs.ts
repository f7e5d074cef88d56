/** Secret names: a letter, then letters, digits, "_" and "-"; at most 63 characters (also a KV key). */
export const SECRET_NAME_PATTERN = /^[A-Za-z][A-Za-z0-9_-]{0,62}$/;
export const SECRET_NAME_RULE = 'a letter followed by letters, digits, "_" or "-", at most 63 characters';

export function isSecretName(name: unknown): name is string {
  return typeof name === 'string' && SECRET_NAME_PATTERN.test(name);
}

/**
 * The secret names that `env` lists refer to (`[{name, secret: "<secret>"}]` in a resource
 * spec or a step config). Tolerant of any shape: what is not such an entry is skipped here
 * (the build spec reader reports malformed entries).
 */
export function secretRefs(...sources: unknown[]): string[] {
  const names = new Set<string>();
  for (const source of sources) {
    if (typeof source !== 'object' || source === null || Array.isArray(source)) continue;
    const env = (source as Record<string, unknown>).env;
    if (!Array.isArray(env)) continue;
    for (const item of env) {
      if (typeof item !== 'object' || item === null) continue;
      const secret = (item as Record<string, unknown>).secret;
      if (typeof secret === 'string') names.add(secret);
    }
  }
  return [...names];
}
