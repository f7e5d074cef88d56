import { groupTemplateProblem, renderGroup } from './concurrency';

describe('concurrency groups', () => {
  it('fills in the pipeline, the resource\'s name and type and spec keys (a missing key is empty)', () => {
    expect(renderGroup('deploy-${{ resource.name }}/${{ resource.spec.env }}/${{resource.spec.region.name}}/${{ pipeline }}', 'p', { type: 't', name: 'site', spec: { env: 'prod', region: { name: 'eu' } } })).toBe('deploy-site/prod/eu/p');
    expect(renderGroup('${{ resource.spec.missing }}x', 'p', { type: 't', name: 'n', spec: {} })).toBe('x');
  });

  it('refuses anything else, naming it', () => {
    expect(groupTemplateProblem('${{ secrets.token }}')).toBe('concurrency.group: ${{ secrets.token }} is not one of pipeline, resource.name, resource.type, resource.spec.<key>');
    expect(groupTemplateProblem(' ')).toBe('concurrency.group is empty');
    expect(groupTemplateProblem('fixed')).toBeUndefined();
  });
});
