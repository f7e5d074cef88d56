import { StorageType } from '@nats-io/jetstream';
import type { KV } from '@nats-io/kv';
import { ensureBucket, type JetStreamContext } from '@conveyor/jetstream';
import { isSecretName, SECRET_NAME_RULE } from './refs';
import { seal, unseal, type SealedSecret } from './secret-key';

/** The KV bucket of secrets, `<prefix>-secrets`; values are sealed (AES-256-GCM) before they are stored. */
export function secretsBucketName(prefix: string): string {
  return `${prefix.replace(/\./g, '_')}-secrets`;
}

export function openSecretsBucket(ctx: JetStreamContext): Promise<KV> {
  return ensureBucket(ctx, secretsBucketName(ctx.config.prefix), { history: 1, replicas: ctx.config.replicas, storage: StorageType.File });
}

/** Thrown for a secret that is referenced but not stored. */
export class UnknownSecretError extends Error {}

/**
 * Secrets by name. Names can be listed and checked without the key; values can be stored and
 * read only with it. Nothing here ever logs or returns a value except `reveal`, which drivers
 * call to put it into a build container's environment and to mask it.
 */
export class SecretsStore {
  constructor(
    private readonly kv: KV,
    private readonly key: Buffer | undefined,
  ) {}

  get canDecrypt(): boolean {
    return this.key !== undefined;
  }

  async put(name: string, value: string): Promise<{ created: boolean }> {
    this.assertName(name);
    const existed = await this.exists(name);
    await this.kv.put(name, JSON.stringify(seal(this.requireKey(), name, value)));
    return { created: !existed };
  }

  async exists(name: string): Promise<boolean> {
    if (!isSecretName(name)) return false;
    const e = await this.kv.get(name);
    return !!e && e.operation === 'PUT' && e.length > 0;
  }

  async names(): Promise<Array<{ name: string; updatedAt?: string }>> {
    const out: Array<{ name: string; updatedAt?: string }> = [];
    for await (const k of await this.kv.keys()) {
      const e = await this.kv.get(k);
      if (!e || e.operation !== 'PUT' || !e.length) continue;
      let updatedAt: string | undefined;
      try {
        updatedAt = (e.json() as SealedSecret).updatedAt;
      } catch {
        // an unreadable record still has a name
      }
      out.push({ name: k, updatedAt });
    }
    return out.sort((a, b) => a.name.localeCompare(b.name));
  }

  /** True when there was something to delete. */
  async delete(name: string): Promise<boolean> {
    if (!(await this.exists(name))) return false;
    await this.kv.delete(name);
    return true;
  }

  /** The plain values of `names`; throws UnknownSecretError naming every missing one. */
  async reveal(names: string[]): Promise<Map<string, string>> {
    const key = this.requireKey();
    const out = new Map<string, string>();
    const missing: string[] = [];
    for (const name of names) {
      const e = isSecretName(name) ? await this.kv.get(name) : null;
      if (!e || e.operation !== 'PUT' || !e.length) {
        missing.push(name);
        continue;
      }
      out.set(name, unseal(key, name, e.json() as SealedSecret));
    }
    if (missing.length) throw new UnknownSecretError(`secret${missing.length > 1 ? 's' : ''} ${missing.map((n) => `"${n}"`).join(', ')} not found`);
    return out;
  }

  private requireKey(): Buffer {
    if (!this.key) throw new Error('secrets need CONVEYOR_SECRET_KEY on this process');
    return this.key;
  }

  private assertName(name: string): void {
    if (!isSecretName(name)) throw new Error(`secret name must be ${SECRET_NAME_RULE}`);
  }
}
