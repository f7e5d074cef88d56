import { ConflictError, type JsonKv, type Versioned } from '@conveyor/store';

/**
 * Replaces a stored object with one built from its current value. With `ifMatch` the write
 * succeeds only at that revision (409 otherwise); without it, a writer that slipped in
 * between is simply overtaken (last writer wins), after a few compare-and-set retries.
 */
export async function replaceStored<T>(
  store: JsonKv<T>,
  what: string,
  key: string,
  build: (current: T) => T,
  ifMatch: number | undefined,
): Promise<Versioned<T>> {
  for (let attempt = 0; ; attempt++) {
    const cur = await store.require(key);
    if (ifMatch !== undefined && cur.revision !== ifMatch) {
      throw new ConflictError(`${what} "${key}" was changed since revision ${ifMatch} (it is at revision ${cur.revision}); read it again and retry`);
    }
    const value = build(cur.value);
    try {
      return { value, revision: await store.update(key, value, cur.revision) };
    } catch (err) {
      if (!(err instanceof ConflictError) || ifMatch !== undefined || attempt >= 4) throw err;
    }
  }
}
