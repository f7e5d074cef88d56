import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';

/** What is stored for a secret: AES-256-GCM, a fresh IV per write, the name bound in as AAD. */
export interface SealedSecret {
  v: 1;
  alg: 'aes-256-gcm';
  iv: string;
  tag: string;
  data: string;
  updatedAt: string;
}

export function seal(key: Buffer, name: string, value: string): SealedSecret {
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', key, iv);
  // The name as AAD: a sealed value copied under another name does not decrypt.
  cipher.setAAD(Buffer.from(name, 'utf8'));
  const data = Buffer.concat([cipher.update(value, 'utf8'), cipher.final()]);
  return { v: 1, alg: 'aes-256-gcm', iv: iv.toString('base64'), tag: cipher.getAuthTag().toString('base64'), data: data.toString('base64'), updatedAt: new Date().toISOString() };
}

/** Throws when the key is not the one the value was sealed with, or the record was altered. */
export function unseal(key: Buffer, name: string, sealed: SealedSecret): string {
  try {
    const decipher = createDecipheriv('aes-256-gcm', key, Buffer.from(sealed.iv, 'base64'));
    decipher.setAAD(Buffer.from(name, 'utf8'));
    decipher.setAuthTag(Buffer.from(sealed.tag, 'base64'));
    return Buffer.concat([decipher.update(Buffer.from(sealed.data, 'base64')), decipher.final()]).toString('utf8');
  } catch {
    throw new Error(`secret "${name}" cannot be decrypted: CONVEYOR_SECRET_KEY differs from the key it was stored with, or the record was altered`);
  }
}
