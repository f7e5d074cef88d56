import { BadRequestException } from '@nestjs/common';
import type { Response } from 'express';

/**
 * Optimistic concurrency over HTTP: a single object's GET answers `ETag: "<n>"` (the KV
 * revision, or a resource's version) and PUT/DELETE with `If-Match: "<n>"` fail with 409
 * when the object changed since. `*` and no header both mean "whatever is there now".
 */
export function setEtag(res: Response, n: number): void {
  res.setHeader('ETag', `"${n}"`);
}

export function parseIfMatch(header: string | undefined): number | undefined {
  if (header === undefined) return undefined;
  const value = header.trim();
  if (value === '' || value === '*') return undefined;
  const m = /^(?:W\/)?"?([1-9][0-9]{0,15})"?$/.exec(value);
  if (!m) throw new BadRequestException(`If-Match ${JSON.stringify(value)} is not valid: send the ETag of a GET, e.g. "3"`);
  return Number(m[1]);
}
