import { ConfigError } from '@conveyor/config';
import { DEFAULT_CAP_ADD, buildContainerOptionsFromEnv, parseDockerBytes } from './options';

describe('buildContainerOptionsFromEnv', () => {
  it('has defaults for users', () => {
    expect(buildContainerOptionsFromEnv({})).toEqual({
      network: 'bridge',
      memoryBytes: 2 * 1024 ** 3,
      nanoCpus: 2e9,
      pidsLimit: 512,
      defaultImage: 'conveyor/build:latest',
      capAdd: DEFAULT_CAP_ADD,
      pullPolicy: 'missing',
      pullTimeoutMs: 600_000,
      stopTimeoutSeconds: 5,
      init: true,
      execUser: '',
      readOnlyRoot: false,
      tmpBytes: 512 * 1024 ** 2,
      dockerTimeoutMs: 30_000,
    });
  });

  it('reads every variable', () => {
    const options = buildContainerOptionsFromEnv({
      CONVEYOR_DOCKER_NETWORK: 'none',
      CONVEYOR_CONTAINER_MEMORY: '512m',
      CONVEYOR_CONTAINER_CPUS: '0.5',
      CONVEYOR_CONTAINER_PIDS: '64',
      CONVEYOR_DEFAULT_IMAGE: 'registry.local:5000/team/build:1.2',
      CONVEYOR_CONTAINER_CAPS: 'cap_chown, setuid',
      CONVEYOR_IMAGE_PULL: 'never',
      CONVEYOR_IMAGE_PULL_TIMEOUT: '30s',
      CONVEYOR_CONTAINER_STOP_TIMEOUT: '0s',
      CONVEYOR_CONTAINER_INIT: 'false',
      CONVEYOR_CONTAINER_USER: 'build',
      CONVEYOR_CONTAINER_READ_ONLY: 'true',
      CONVEYOR_CONTAINER_TMP_SIZE: '64m',
      CONVEYOR_DOCKER_TIMEOUT: '2s',
    });
    expect(options).toEqual({
      network: 'none',
      memoryBytes: 512 * 1024 ** 2,
      nanoCpus: 5e8,
      pidsLimit: 64,
      defaultImage: 'registry.local:5000/team/build:1.2',
      capAdd: ['CHOWN', 'SETUID'],
      pullPolicy: 'never',
      pullTimeoutMs: 30_000,
      stopTimeoutSeconds: 0,
      init: false,
      execUser: 'build',
      readOnlyRoot: true,
      tmpBytes: 64 * 1024 ** 2,
      dockerTimeoutMs: 2_000,
    });
    expect(buildContainerOptionsFromEnv({ CONVEYOR_CONTAINER_CAPS: 'none' }).capAdd).toEqual([]);
  });

  it.each([
    ['CONVEYOR_CONTAINER_MEMORY', '2 tb'],
    ['CONVEYOR_CONTAINER_MEMORY', '1m'],
    ['CONVEYOR_CONTAINER_CPUS', '-1'],
    ['CONVEYOR_CONTAINER_CPUS', 'two'],
    ['CONVEYOR_CONTAINER_PIDS', '0'],
    ['CONVEYOR_CONTAINER_CAPS', 'ALL'],
    ['CONVEYOR_CONTAINER_CAPS', 'SYS_ADMIN'],
    ['CONVEYOR_CONTAINER_CAPS', 'NET-RAW'],
    ['CONVEYOR_IMAGE_PULL', 'always'],
    ['CONVEYOR_CONTAINER_READ_ONLY', 'yes'],
    ['CONVEYOR_CONTAINER_TMP_SIZE', 'lots'],
    ['CONVEYOR_DOCKER_NETWORK', 'host; rm -rf /'],
    ['CONVEYOR_IMAGE_PULL_TIMEOUT', 'soon'],
    ['CONVEYOR_DOCKER_TIMEOUT', '0s'],
    ['CONVEYOR_DOCKER_TIMEOUT', 'forever'],
  ])('refuses %s=%s naming the variable', (key, value) => {
    expect(() => buildContainerOptionsFromEnv({ [key]: value })).toThrow(ConfigError);
    expect(() => buildContainerOptionsFromEnv({ [key]: value })).toThrow(key);
  });
});

describe('parseDockerBytes', () => {
  it("reads Docker's size notation", () => {
    expect(parseDockerBytes('2g')).toBe(2 * 1024 ** 3);
    expect(parseDockerBytes('2GB')).toBe(2 * 1024 ** 3);
    expect(parseDockerBytes('512m')).toBe(512 * 1024 ** 2);
    expect(parseDockerBytes('1.5g')).toBe(1.5 * 1024 ** 3);
    expect(parseDockerBytes('1024')).toBe(1024);
    expect(parseDockerBytes('0')).toBeUndefined();
    expect(parseDockerBytes('lots')).toBeUndefined();
  });
});
