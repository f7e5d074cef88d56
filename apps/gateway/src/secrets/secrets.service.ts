import { BadRequestException, Inject, Injectable, NotFoundException, ServiceUnavailableException } from '@nestjs/common';
import { isSecretName, SECRET_NAME_RULE, secretRefs, SecretsStore } from '@conveyor/secrets';

const NO_KEY = 'secrets are not enabled on this gateway: start it with CONVEYOR_SECRET_KEY (32 random bytes in base64, e.g. `openssl rand -base64 32`)';

/** The gateway's side of secrets: write, list names, delete, and check references. Values never leave. */
@Injectable()
export class SecretsService {
  constructor(@Inject(SecretsStore) private readonly store: SecretsStore) {}

  async put(name: string, value: string): Promise<{ name: string; created: boolean }> {
    this.requireKey();
    if (value.includes('\0')) throw new BadRequestException('value must not contain a NUL character');
    const { created } = await this.store.put(this.checkName(name), value);
    return { name, created };
  }

  async list(): Promise<Array<{ name: string; updatedAt?: string }>> {
    this.requireKey();
    return this.store.names();
  }

  async delete(name: string): Promise<void> {
    this.requireKey();
    if (!(await this.store.delete(this.checkName(name)))) throw new NotFoundException(`secret "${name}" not found`);
  }

  /**
   * Every `{name, secret}` env entry of a resource spec must name a stored secret, so that a
   * typo fails the POST (400), not the build.
   */
  async checkRefs(spec: unknown): Promise<void> {
    const names = secretRefs(spec);
    if (!names.length) return;
    this.requireKey();
    const bad = names.filter((n) => !isSecretName(n));
    if (bad.length) throw new BadRequestException(`spec.env refers to secret ${JSON.stringify(bad[0])}: a secret name is ${SECRET_NAME_RULE}`);
    const missing: string[] = [];
    for (const n of names) if (!(await this.store.exists(n))) missing.push(n);
    if (missing.length) {
      throw new BadRequestException(`spec.env refers to secret${missing.length > 1 ? 's' : ''} ${missing.map((n) => `"${n}"`).join(', ')} that do${missing.length > 1 ? '' : 'es'} not exist; create ${missing.length > 1 ? 'them' : 'it'} with PUT /secrets/<name>`);
    }
  }

  /** Every name must be a stored secret (a trigger's webhook secret and status token): 400 naming those that are not. */
  async requireStored(names: string[], what: string): Promise<void> {
    this.requireKey();
    const missing: string[] = [];
    for (const n of new Set(names)) if (!(await this.store.exists(n))) missing.push(n);
    if (missing.length) {
      throw new BadRequestException(`the ${what} names secret${missing.length > 1 ? 's' : ''} ${missing.map((n) => `"${n}"`).join(', ')} that do${missing.length > 1 ? '' : 'es'} not exist; create ${missing.length > 1 ? 'them' : 'it'} with PUT /secrets/<name>`);
    }
  }

  /** The value of a stored secret, for the gateway's own use (a webhook's signature check); undefined when it is gone or secrets are off. */
  async valueOf(name: string): Promise<string | undefined> {
    if (!this.store.canDecrypt || !(await this.store.exists(name))) return undefined;
    return (await this.store.reveal([name])).get(name);
  }

  private requireKey(): void {
    if (!this.store.canDecrypt) throw new ServiceUnavailableException(NO_KEY);
  }

  private checkName(name: string): string {
    if (!isSecretName(name)) throw new BadRequestException(`secret name ${JSON.stringify(name)} is not valid: use ${SECRET_NAME_RULE}`);
    return name;
  }
}
