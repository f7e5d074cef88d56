import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import Docker from 'dockerode';
import { ensureDockerEngine } from '../support/docker';

jest.setTimeout(120_000);

const BUILD_SH = join(__dirname, '..', '..', 'deploy', 'image', 'build.sh');
const TAG = 'conveyor/build:e2e-build-sh';

/** Runs a throw-away container of the image with no network and returns its stdout. */
function runIn(image: string, user: string, script: string): string {
  return execFileSync('docker', ['run', '--rm', '--network', 'none', '--label', 'conveyor.test=true', '-u', user, image, '/bin/sh', '-c', script], { encoding: 'utf8', timeout: 60_000 });
}

describe('deploy/image/build.sh (real Docker)', () => {
  const docker = new Docker();
  beforeAll(async () => {
    await ensureDockerEngine();
    await docker.getImage(TAG).remove({ force: true }).catch(() => undefined);
  });
  afterAll(async () => {
    await docker.getImage(TAG).remove({ force: true }).catch(() => undefined);
  });

  it('builds the image from busybox-static, keeps it on a second run and rebuilds with --force', async () => {
    const first = execFileSync('bash', [BUILD_SH, '--tag', TAG], { encoding: 'utf8', timeout: 60_000 });
    expect(first).toMatch(new RegExp(`built ${TAG} \\(sha256:[0-9a-f]{64}\\) from .*busybox`));
    const id = (await docker.getImage(TAG).inspect()).Id;

    const second = execFileSync('bash', [BUILD_SH, '--tag', TAG], { encoding: 'utf8', timeout: 60_000 });
    expect(second).toContain(`image ${TAG} already exists (${id}); nothing to do`);
    expect((await docker.getImage(TAG).inspect()).Id).toBe(id);

    const forced = execFileSync('bash', [BUILD_SH, '--tag', TAG, '--force'], { encoding: 'utf8', timeout: 60_000 });
    expect(forced).toContain(`built ${TAG}`);
    expect(forced).toContain(`removed the previous image ${id}`);
  });

  it('has a shell, the usual tools, a sticky /tmp, /workspace and an unprivileged build user', async () => {
    const info = await docker.getImage(TAG).inspect();
    expect(info.Config.Cmd).toEqual(['/bin/sh']);
    expect(info.Config.WorkingDir).toBe('/workspace');
    expect(info.Config.Env).toContain('PATH=/bin:/usr/bin');
    const asRoot = runIn(TAG, '0', 'pwd; stat -c %a /tmp; for t in sh ls cat echo env sleep grep sed base64 kill ps setsid; do command -v $t; done | wc -l; echo x | base64');
    expect(asRoot.split('\n')).toEqual(['/workspace', '1777', '12', 'eAo=', '']);
    expect(runIn(TAG, 'build', 'id; echo $HOME; touch /tmp/ok && echo tmp-writable')).toBe('uid=1000(build) gid=1000(build) groups=1000(build)\n/home/build\ntmp-writable\n');
  });
});
