import { randomBytes } from 'node:crypto';
import { buildMasker, MASK, maskDeep } from './masker';
import { secretRefs } from './refs';
import { loadSecretKey } from '@conveyor/config';
import { seal, unseal } from './secret-key';

describe('secret key and sealing', () => {
  const key = randomBytes(32);

  it('reads a 32-byte base64 key and refuses anything else', () => {
    expect(loadSecretKey({})).toBeUndefined();
    expect(loadSecretKey({ CONVEYOR_SECRET_KEY: key.toString('base64') })?.equals(key)).toBe(true);
    for (const bad of ['short', randomBytes(16).toString('base64'), 'not base64 at all!!']) {
      expect(() => loadSecretKey({ CONVEYOR_SECRET_KEY: bad })).toThrow(/32 bytes in base64/);
    }
  });

  it('round-trips, hides the value, and refuses another key, another name or an altered record', () => {
    const sealed = seal(key, 'deploy-token', 'hunter2-very-secret');
    expect(JSON.stringify(sealed)).not.toContain('hunter2');
    expect(unseal(key, 'deploy-token', sealed)).toBe('hunter2-very-secret');
    expect(() => unseal(randomBytes(32), 'deploy-token', sealed)).toThrow(/cannot be decrypted/);
    expect(() => unseal(key, 'other-name', sealed)).toThrow(/cannot be decrypted/);
    const altered = { ...sealed, data: Buffer.from('x' + Buffer.from(sealed.data, 'base64').toString('latin1'), 'latin1').toString('base64') };
    expect(() => unseal(key, 'deploy-token', altered)).toThrow(/cannot be decrypted/);
  });
});

describe('masking', () => {
  const secret = 'S3cr3t-Pa55-w0rd!x';
  const mask = buildMasker([secret]);

  it('hides the value wherever it appears in a line', () => {
    expect(mask(`token=${secret}; again ${secret}`)).toBe(`token=${MASK}; again ${MASK}`);
    expect(mask('nothing here')).toBe('nothing here');
  });

  it('hides its base64 form at any alignment, with or without a trailing newline', () => {
    for (const text of [secret, `${secret}\n`, `x${secret}`, `xy${secret}\n`, `prefix:${secret}:suffix`]) {
      const b64 = Buffer.from(text).toString('base64');
      const masked = mask(b64);
      expect(masked).toContain(MASK);
      // What is left cannot be decoded back to the value.
      expect(Buffer.from(masked.replace(MASK, ''), 'base64').toString('latin1')).not.toContain(secret.slice(2, -2));
    }
  });

  it('leaves short values alone and masks nested results', () => {
    expect(buildMasker(['abc'])('abc')).toBe('abc');
    expect(maskDeep({ message: `failed: ${secret}`, data: { list: [secret, 1, null] } }, mask)).toEqual({ message: `failed: ${MASK}`, data: { list: [MASK, 1, null] } });
  });

  it('finds secret references in env lists of any shape', () => {
    expect(secretRefs({ env: [{ name: 'A', secret: 'one' }, { name: 'B', value: 'x' }, 'junk', null] }, { env: [{ name: 'C', secret: 'two' }, { secret: 'one' }] }, { env: 'nope' }, null, [])).toEqual(['one', 'two']);
  });
});
