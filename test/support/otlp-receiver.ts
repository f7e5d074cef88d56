import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

/** A span as an OTLP/HTTP JSON export carries it, with its attributes read into plain values. */
export interface ExportedSpan {
  service: string;
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  kind: number;
  status: { code?: number; message?: string };
  attributes: Record<string, string | number | boolean>;
  links: { traceId: string; spanId: string }[];
}

type OtlpValue = { stringValue?: string; intValue?: string | number; boolValue?: boolean; doubleValue?: number };
type OtlpAttribute = { key: string; value: OtlpValue };
interface OtlpExport {
  resourceSpans: {
    resource: { attributes: OtlpAttribute[] };
    scopeSpans: {
      spans: (Omit<ExportedSpan, 'service' | 'attributes' | 'links' | 'status'> & { attributes?: OtlpAttribute[]; links?: { traceId: string; spanId: string }[]; status?: ExportedSpan['status'] })[];
    }[];
  }[];
}

const valueOf = (v: OtlpValue): string | number | boolean => v.stringValue ?? (v.intValue !== undefined ? Number(v.intValue) : v.boolValue ?? v.doubleValue ?? '');
const attrs = (list: OtlpAttribute[] = []) => Object.fromEntries(list.map((a) => [a.key, valueOf(a.value)]));

/** A real OTLP/HTTP receiver on 127.0.0.1: every span POSTed to /v1/traces (JSON, as the exporter sends it). */
export class OtlpReceiver {
  readonly spans: ExportedSpan[] = [];
  private constructor(private readonly server: Server) {}

  static start(): Promise<OtlpReceiver> {
    let receiver: OtlpReceiver;
    const server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        if (req.method !== 'POST' || req.url !== '/v1/traces' || !String(req.headers['content-type']).startsWith('application/json')) {
          res.writeHead(404).end();
          return;
        }
        receiver.take(JSON.parse(Buffer.concat(chunks).toString('utf8')) as OtlpExport);
        res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
      });
    });
    receiver = new OtlpReceiver(server);
    return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(receiver)));
  }

  get url(): string {
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  close(): Promise<void> {
    return new Promise((resolve) => this.server.close(() => resolve()));
  }

  private take(body: OtlpExport): void {
    for (const rs of body.resourceSpans) {
      const service = String(attrs(rs.resource.attributes)['service.name']);
      for (const ss of rs.scopeSpans) {
        for (const s of ss.spans) {
          this.spans.push({ ...s, service, parentSpanId: s.parentSpanId || undefined, attributes: attrs(s.attributes), links: s.links ?? [], status: s.status ?? {} });
        }
      }
    }
  }
}
