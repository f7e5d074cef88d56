import { InterpolationError, interpolateConfig, parseOutputFile } from './outputs';

describe('interpolateConfig', () => {
  const outputs = { build: { success: true, data: { version: '1.2.3', size: 42, meta: { arch: 'amd64' } } } };

  it('fills in earlier steps\' outputs: a whole string takes the value as it is, inside text it is text', () => {
    expect(interpolateConfig({ tag: '${{ steps.build.outputs.version }}', n: '${{steps.build.outputs.size}}', cmd: ['deploy v${{ steps.build.outputs.version }} (${{ steps.build.outputs.meta.arch }})'], keep: 7 }, outputs)).toEqual({
      tag: '1.2.3',
      n: 42,
      cmd: ['deploy v1.2.3 (amd64)'],
      keep: 7,
    });
  });

  it('names what cannot be filled in', () => {
    expect(() => interpolateConfig({ a: '${{ steps.test.outputs.x }}' }, outputs)).toThrow(new InterpolationError('${{ steps.test.outputs.x }}: step "test" has no output here (is it a step this one needs, and did it end?)'));
    expect(() => interpolateConfig({ a: '${{ steps.build.outputs.nope }}' }, outputs)).toThrow('step "build" has no output "nope"');
    expect(() => interpolateConfig({ a: '${{ secrets.x }}' }, outputs)).toThrow('only steps.<id>.outputs.<key> can be filled in');
    // A driver's own expressions (a cache key) are left for it.
    const cache = { key: "npm-${{ hashFiles('package-lock.json') }}-${{ resource.name }}", whole: '${{ pipeline }}' };
    expect(interpolateConfig({ cache }, outputs)).toEqual({ cache });
  });
});

describe('parseOutputFile', () => {
  it('reads key=value lines and key<<DELIM blocks; a later key wins', () => {
    expect(parseOutputFile('version=1.2\n\nname=a=b\nnotes<<EOF\nline 1\nline 2\nEOF\nversion=1.3\n')).toEqual({ outputs: { version: '1.3', name: 'a=b', notes: 'line 1\nline 2' } });
  });

  it('says what is wrong: a line that is not key=value, an unclosed block, a file over the limit', () => {
    expect(parseOutputFile('ok=1\njust text')).toEqual({ error: '$CONVEYOR_OUTPUT line 2 is not key=value: "just text"' });
    expect(parseOutputFile('a<<END\nx')).toEqual({ error: '$CONVEYOR_OUTPUT line 1: "a<<END" is never closed by a line "END"' });
    expect(parseOutputFile(`big=${'x'.repeat(70_000)}`)).toEqual({ error: "$CONVEYOR_OUTPUT holds more than 65536 bytes, the limit of a step's outputs" });
  });
});
