import { GitInputError, allowedProtocolsFromEnv, checkRef, checkRepositoryUrl, maskCredentials } from './validation';

describe('checkRepositoryUrl', () => {
  it.each([
    ['https://github.com/conveyor-ci/conveyor.git', 'https'],
    ['http://127.0.0.1:8080/repo.git', 'http'],
    ['ssh://git@example.com:2222/org/repo.git', 'ssh'],
    ['git+ssh://example.com/org/repo.git', 'ssh'],
    ['git://127.0.0.1/repo.git', 'git'],
    ['file:///tmp/some/repo', 'file'],
    ['git@github.com:org/repo.git', 'ssh'],
    ['example.com:org/repo.git', 'ssh'],
  ])('accepts %s as %s', (url, protocol) => {
    expect(checkRepositoryUrl(url).protocol).toBe(protocol);
  });

  it.each([
    ['ext::sh -c touch% /tmp/pwned', /remote-helper|spaces/],
    ['ext::sh', /remote-helper/],
    ['fd::0', /remote-helper/],
    ['--upload-pack=touch /tmp/x', /starts with "-"|spaces/],
    ['-oProxyCommand=x', /starts with "-"/],
    ['ssh://-oProxyCommand=touch%20x/repo', /host starts with "-"/],
    ['-oProxyCommand=x:repo', /starts with "-"/],
    ['git@-oProxyCommand=x:repo', /host starts with "-"/],
    ['host:-repo', /path/],
    ['https://example.com/repo\n.git', /control/],
    ['https://example.com/re\u0000po', /control/],
    ['ftp://example.com/repo', /protocol "ftp" is not supported/],
    ['/tmp/local/repo', /use a URL/],
    ['./repo', /use a URL/],
    ['file://otherhost/tmp/repo', /on this machine/],
    ['https://', /not a valid URL|no host/],
    ['https://example.com', /no repository path/],
    ['C:/repo', /drive-letter/],
    ['', /missing/],
  ])('refuses %j', (url, why) => {
    expect(() => checkRepositoryUrl(url)).toThrow(GitInputError);
    expect(() => checkRepositoryUrl(url)).toThrow(why);
  });

  it('refuses non-strings', () => {
    expect(() => checkRepositoryUrl(42)).toThrow(GitInputError);
    expect(() => checkRepositoryUrl(undefined)).toThrow(/missing/);
  });

  it('applies the allow-list', () => {
    expect(() => checkRepositoryUrl('file:///tmp/repo', ['https', 'ssh'])).toThrow(/protocol "file" is not allowed here/);
    expect(() => checkRepositoryUrl('git@host:repo.git', ['https'])).toThrow(/"ssh" is not allowed/);
    expect(checkRepositoryUrl('https://h/r.git', ['https']).protocol).toBe('https');
  });

  it('masks credentials in what it shows and drops them from the stored URL', () => {
    const checked = checkRepositoryUrl('https://user:s3cret@example.com/org/repo.git');
    expect(checked.display).toBe('https://***@example.com/org/repo.git');
    expect(checked.urlWithoutCredentials).toBe('https://example.com/org/repo.git');
    expect(checked.url).toBe('https://user:s3cret@example.com/org/repo.git');
    expect(checkRepositoryUrl('ssh://git@example.com/repo.git').urlWithoutCredentials).toBe('ssh://git@example.com/repo.git');
    let message = '';
    try {
      checkRepositoryUrl('ftp://user:s3cret@example.com/repo');
    } catch (err) {
      message = (err as Error).message;
    }
    expect(message).toContain('ftp://***@example.com/repo');
    expect(message).not.toContain('s3cret');
  });
});

describe('maskCredentials', () => {
  it('masks the user-info of every URL in a text and leaves the rest alone', () => {
    expect(maskCredentials("fatal: unable to access 'https://x-token:ghp_abc@github.com/o/r.git/': 403")).toBe(
      "fatal: unable to access 'https://***@github.com/o/r.git/': 403",
    );
    expect(maskCredentials('from http://a:b@h/x and https://tok@h2/y')).toBe('from http://***@h/x and https://***@h2/y');
    expect(maskCredentials('https://user:p@ss@host/repo')).toBe('https://***@host/repo');
    expect(maskCredentials('https://host/repo and git@host:repo')).toBe('https://host/repo and git@host:repo');
  });
});

describe('checkRef', () => {
  it.each(['main', 'v1', 'release/1.2', 'feature/x-y_z', 'v1.0.0'])('accepts the name %s', (ref) => {
    expect(checkRef(ref)).toEqual({ ref, kind: 'name' });
  });

  it('recognises full commit ids', () => {
    expect(checkRef('A'.repeat(40))).toEqual({ ref: 'a'.repeat(40), kind: 'commit' });
    expect(checkRef('0123456789abcdef'.repeat(4)).kind).toBe('commit');
    expect(checkRef('abc1234').kind).toBe('name');
  });

  it.each([
    ['-bad', /starts with "-"/],
    ['--upload-pack=x', /starts with "-"/],
    ['a..b', /".."/],
    ['a b', /spaces/],
    ['a\tb', /control/],
    ['HEAD@{1}', /@\{/],
    ['@', /"@"/],
    ['a~1', /~/],
    ['a^', /\^/],
    ['a:b', /:/],
    ['/main', /empty path component/],
    ['main/', /empty path component/],
    ['a//b', /empty path component/],
    ['main.', /ends with "."/],
    ['.hidden', /starts with "."/],
    ['a/.b', /starts with "."/],
    ['x.lock', /\.lock/],
    ['x'.repeat(256), /255/],
    ['', /empty/],
  ])('refuses %j', (ref, why) => {
    expect(() => checkRef(ref)).toThrow(GitInputError);
    expect(() => checkRef(ref)).toThrow(why);
  });
});

describe('allowedProtocolsFromEnv', () => {
  it('defaults to every protocol and reads a comma list', () => {
    expect(allowedProtocolsFromEnv({})).toEqual(['https', 'http', 'ssh', 'git', 'file']);
    expect(allowedProtocolsFromEnv({ CONVEYOR_GIT_PROTOCOLS: 'HTTPS, ssh' })).toEqual(['https', 'ssh']);
    expect(() => allowedProtocolsFromEnv({ CONVEYOR_GIT_PROTOCOLS: 'https,ext' })).toThrow(/"ext" is not one of/);
  });
});
