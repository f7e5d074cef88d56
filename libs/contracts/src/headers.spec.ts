import { Headers, PROTOCOL_VERSION, protocolProblem } from './headers';
import { MESSAGE_VERSION } from './messages';

describe('the protocol version header', () => {
  it('is <major>.<minor> with the payloads\' version as its major', () => {
    expect(Headers.Protocol).toBe('Conveyor-Protocol');
    expect(PROTOCOL_VERSION).toMatch(/^\d+\.\d+$/);
    expect(Number(PROTOCOL_VERSION.split('.')[0])).toBe(MESSAGE_VERSION);
  });

  it.each([[undefined], [''], [PROTOCOL_VERSION], [`${MESSAGE_VERSION}.7`]])('lets a driver act on %p (same major, any minor, or no header)', (v) => {
    expect(protocolProblem(v)).toBeUndefined();
  });

  it.each<[string, string]>([
    [`${MESSAGE_VERSION + 1}.0`, `unsupported protocol major version ${MESSAGE_VERSION + 1}`],
    ['0.9', 'unsupported protocol major version 0'],
    ['1', 'malformed Conveyor-Protocol header "1"'],
    ['v1.0', 'malformed Conveyor-Protocol header'],
  ])('refuses %p', (v, reason) => {
    expect(protocolProblem(v)).toContain(reason);
  });
});
