import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { checkExposure, loadApiAuthConfig, parseApiTokens, roleAllows, TokenAuthenticator } from './api-tokens';

const A = 'admin-token-0123456789';
const W = 'write-token-0123456789';
const R = 'read-token-01234567890';

describe('API tokens', () => {
  it('parses token:role lists from the variable and from a file (one per line, comments)', () => {
    expect(loadApiAuthConfig({ CONVEYOR_API_TOKENS: `${A}:admin, ${R}:read` }).tokens).toEqual([
      { token: A, role: 'admin' },
      { token: R, role: 'read' },
    ]);
    const file = join(mkdtempSync(join(tmpdir(), 'tokens-')), 'tokens');
    writeFileSync(file, `# operators\n${A}:admin\n${W}:write # ci\n`);
    expect(loadApiAuthConfig({ CONVEYOR_API_TOKENS_FILE: file }).tokens.map((t) => t.role)).toEqual(['admin', 'write']);
  });

  it('refuses bad entries without printing the token', () => {
    for (const bad of ['justatokenwithoutrole', `${A}:root`, 'short:admin', `${A}:admin,${A}:read`]) {
      let message = '';
      try {
        parseApiTokens(bad, 'CONVEYOR_API_TOKENS');
      } catch (err) {
        message = (err as Error).message;
      }
      expect(message).toMatch(/^CONVEYOR_API_TOKENS: .*entry \d/);
      expect(message).not.toContain(A);
    }
    expect(() => loadApiAuthConfig({ CONVEYOR_API_TOKENS: `${A}:admin`, CONVEYOR_API_TOKENS_FILE: '/x' })).toThrow(/not both/);
    expect(() => loadApiAuthConfig({ CONVEYOR_API_TOKENS_FILE: '/nonexistent/tokens' })).toThrow(/cannot read it/);
    expect(() => loadApiAuthConfig({ CONVEYOR_ALLOW_UNAUTHENTICATED: 'yes' })).toThrow(/true or false/);
  });

  it('authenticates only exact tokens and orders roles', () => {
    const auth = new TokenAuthenticator(parseApiTokens(`${A}:admin,${W}:write,${R}:read`, 'x'));
    expect(auth.enabled).toBe(true);
    expect(auth.authenticate(A)).toBe('admin');
    expect(auth.authenticate(R)).toBe('read');
    for (const wrong of [undefined, '', A.slice(0, -1), A + 'x', A.toUpperCase(), ' ' + A]) expect(auth.authenticate(wrong)).toBeUndefined();
    expect(new TokenAuthenticator([]).enabled).toBe(false);
    expect(roleAllows('admin', 'write')).toBe(true);
    expect(roleAllows('write', 'read')).toBe(true);
    expect(roleAllows('write', 'admin')).toBe(false);
    expect(roleAllows('read', 'write')).toBe(false);
  });

  it('refuses an open API on a non-loopback address unless allowed, and warns when open', () => {
    const none = { tokens: [], allowUnauthenticated: false };
    expect(() => checkExposure('0.0.0.0', none)).toThrow(/refusing to listen on 0.0.0.0 without API tokens/);
    expect(() => checkExposure('10.1.2.3', none)).toThrow(/CONVEYOR_ALLOW_UNAUTHENTICATED/);
    expect(checkExposure('127.0.0.1', none)).toMatch(/UNAUTHENTICATED/);
    expect(checkExposure('::1', none)).toMatch(/UNAUTHENTICATED/);
    expect(checkExposure('0.0.0.0', { tokens: [], allowUnauthenticated: true })).toMatch(/UNAUTHENTICATED/);
    expect(checkExposure('0.0.0.0', { tokens: [{ token: A, role: 'admin' }], allowUnauthenticated: false })).toBeUndefined();
  });
});
