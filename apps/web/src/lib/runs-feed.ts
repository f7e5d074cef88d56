import type { Run, RunStatus } from '@conveyor/contracts/models';

/** The filters of the runs list, as the API takes them. */
export interface RunsFilter {
  pipeline?: string;
  status?: RunStatus;
  resource?: string;
}

export function matches(run: Run, f: RunsFilter): boolean {
  return (!f.pipeline || run.pipeline.name === f.pipeline) && (!f.status || run.status === f.status) && (!f.resource || run.resource.name === f.resource);
}

/**
 * A page of runs (newest first) after one run changed, as the run-changes stream reports it:
 * a run on the page is updated in place (or leaves it when it no longer matches the filter);
 * a new matching run enters the first page at its place by id (ids are time-ordered) and the
 * oldest run drops off when the page is full. Older pages only update what they show.
 */
export function mergeRun(page: Run[], run: Run, f: RunsFilter, opts: { firstPage: boolean; limit: number }): Run[] {
  const at = page.findIndex((r) => r.id === run.id);
  if (at >= 0) {
    if (!matches(run, f)) return page.filter((r) => r.id !== run.id);
    const next = page.slice();
    next[at] = run;
    return next;
  }
  if (!opts.firstPage || !matches(run, f)) return page;
  const oldest = page.at(-1);
  if (page.length >= opts.limit && oldest && run.id < oldest.id) return page;
  const next = [...page, run].sort((a, b) => (a.id < b.id ? 1 : a.id > b.id ? -1 : 0));
  return next.slice(0, opts.limit);
}
