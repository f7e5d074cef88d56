import { ConfigError } from '@conveyor/config';
import { containerLabelsFromEnv } from './labels';

describe('containerLabelsFromEnv', () => {
  it('reads key=value pairs, none by default', () => {
    expect(containerLabelsFromEnv({})).toEqual({});
    expect(containerLabelsFromEnv({ CONVEYOR_CONTAINER_LABELS: 'conveyor.test=true, team=web ,flag' })).toEqual({ 'conveyor.test': 'true', team: 'web', flag: '' });
  });

  it.each(['conveyor.run=x', 'conveyor.managed=false', 'bad key=1', '=x'])('refuses %s naming the variable', (value) => {
    expect(() => containerLabelsFromEnv({ CONVEYOR_CONTAINER_LABELS: value })).toThrow(ConfigError);
    expect(() => containerLabelsFromEnv({ CONVEYOR_CONTAINER_LABELS: value })).toThrow('CONVEYOR_CONTAINER_LABELS');
  });
});
