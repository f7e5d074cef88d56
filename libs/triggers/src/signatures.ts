import { createHmac, timingSafeEqual } from 'node:crypto';
import type { TriggerSource } from '@conveyor/contracts';

/** Request headers, lower-cased names (as Node gives them). */
export type HookHeaders = Record<string, string | string[] | undefined>;

/** The header each source signs with, and the delivery id header (see the README's Triggers). */
export const SIGNATURE_HEADER: Record<TriggerSource, string> = {
  github: 'x-hub-signature-256',
  gitea: 'x-gitea-signature',
  gitlab: 'x-gitlab-token',
  generic: 'x-conveyor-signature-256',
};

export function header(headers: HookHeaders, name: string): string | undefined {
  const v = headers[name];
  return Array.isArray(v) ? v[0] : v;
}

/** `sha256=<hex>` of the HMAC-SHA256 of `body` with `secret`: what GitHub and the generic endpoint send (and what Conveyor signs notifications with). */
export function signBody(secret: string, body: Buffer | string): string {
  return `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`;
}

/** Why a delivery's signature is not the forge's own, or undefined when it is. Constant time on the bytes compared. */
export function signatureProblem(source: TriggerSource, headers: HookHeaders, rawBody: Buffer, secret: string): string | undefined {
  const name = SIGNATURE_HEADER[source];
  const given = header(headers, name);
  if (given === undefined || given === '') return `no ${name} header`;
  if (source === 'gitlab') {
    // GitLab sends the secret itself; compared as bytes of equal length (digests), so no length leaks.
    return sameBytes(digest(given), digest(secret)) ? undefined : `${name} does not match the trigger's secret`;
  }
  const hex = createHmac('sha256', secret).update(rawBody).digest('hex');
  const expected = source === 'gitea' ? hex : `sha256=${hex}`;
  // Hex is case-insensitive; the forges send lower case, a hand-made client may not.
  return sameBytes(Buffer.from(given.trim().toLowerCase()), Buffer.from(expected)) ? undefined : `${name} is not the HMAC-SHA256 of the body with the trigger's secret`;
}

function digest(text: string): Buffer {
  return createHmac('sha256', 'conveyor-token-compare').update(text, 'utf8').digest();
}

function sameBytes(a: Buffer, b: Buffer): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}
