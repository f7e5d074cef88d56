import { useEffect, useRef, useState } from 'preact/hooks';
import type { LogLine, LogsEnd } from '@conveyor/contracts/messages';
import { openEventStream } from '../api/event-stream';
import { LogModel, type IncomingLine } from '../lib/log-model';

export interface RunLog {
  model: LogModel;
  version: number;
  state: 'connecting' | 'open' | 'retrying' | 'ended' | 'closed';
  detail?: string;
  end?: LogsEnd;
}

/**
 * A run's whole log, stored then live, from `/logs/pipeline/<run>`: lines are gathered and
 * added once per animation frame (100,000 stored lines arrive in a few hundred frames, not
 * 100,000 renders), and a reconnect resumes after the last line held.
 */
export function useRunLog(runId: string): RunLog {
  const model = useRef<LogModel>(new LogModel());
  const [version, setVersion] = useState(0);
  const [state, setState] = useState<{ state: RunLog['state']; detail?: string; end?: LogsEnd }>({ state: 'connecting' });
  useEffect(() => {
    model.current = new LogModel();
    setVersion(0);
    let batch: IncomingLine[] = [];
    let frame = 0;
    const flush = () => {
      frame = 0;
      const b = batch;
      batch = [];
      if (model.current.append(b)) setVersion(model.current.version);
    };
    const stream = openEventStream({
      path: `/logs/pipeline/${encodeURIComponent(runId)}`,
      until: 'end',
      onEvent: (event, data, id) => {
        if (event === 'log') {
          const l = JSON.parse(data) as LogLine;
          batch.push({ ...l, seq: Number(id) });
          if (!frame) frame = requestAnimationFrame(flush);
        } else if (event === 'end') {
          flush();
          setState({ state: 'ended', end: JSON.parse(data) as LogsEnd });
        } else if (event === 'error') {
          setState({ state: 'retrying', detail: (JSON.parse(data) as { message?: string }).message });
        }
      },
      onState: (s, detail) => setState((old) => (old.state === 'ended' ? old : { state: s, detail })),
    });
    return () => {
      stream.stop();
      if (frame) cancelAnimationFrame(frame);
    };
  }, [runId]);
  return { model: model.current, version, ...state };
}
