import { createHash } from 'node:crypto';
import { HttpException, Inject, Injectable, Logger } from '@nestjs/common';
import type { KV } from '@nats-io/kv';
import { isName, newRunId, type HookDeliveryOutcome, type JsonObject, type Trigger, type TriggerOrigin } from '@conveyor/contracts';
import { ConflictError, NotFoundError, ResourcesStore, RunsStore, isWrongRevision } from '@conveyor/store';
import { HookPayloadError, ignoredBecause, parseHook, resourceNameFor, signatureProblem, specFor, type HookEvent, type HookHeaders } from '@conveyor/triggers';
import { MetricsService } from '../metrics/metrics.service';
import { ResourcesService } from '../resources/resources.service';
import { SecretsService } from '../secrets/secrets.service';
import { TriggersStore } from './triggers.store';

/** What `POST /hooks/:trigger` answers. */
export interface HookAnswer {
  status: number;
  body: JsonObject;
}

/** A delivery id's record in the hook-deliveries bucket. */
interface DeliveryRecord {
  runid: string;
  /** When its taker began (ms): a record without a version this old is taken over (its taker stopped). */
  at: number;
  resource?: string;
  version?: number;
}

/** How long a copy of a delivery waits for the copy that took it to write its version. */
const WAIT_FOR_TAKER_MS = 8_000;
const WAIT_STEP_MS = 200;
/** A taker that wrote no version in this long stopped (a gateway killed mid-way): another copy takes over. */
const TAKEOVER_AFTER_MS = 30_000;

/**
 * The webhook endpoint's work: the trigger's own signature on the raw body first (nothing is
 * parsed, stored or logged of an unsigned body), then the forge's event, the trigger's filters,
 * and one run per delivery id: the id is recorded first with the run id it will get (KV create),
 * so a forge's redelivery, or two copies at once, answer the same run.
 */
@Injectable()
export class HookDeliveries {
  private readonly log = new Logger(HookDeliveries.name);

  constructor(
    @Inject('HOOK_DELIVERIES_KV') private readonly deliveries: KV,
    private readonly triggers: TriggersStore,
    private readonly secrets: SecretsService,
    private readonly resourcesService: ResourcesService,
    private readonly resources: ResourcesStore,
    private readonly runs: RunsStore,
    private readonly metrics: MetricsService,
  ) {}

  async receive(name: string, headers: HookHeaders, raw: Buffer): Promise<HookAnswer> {
    const found = isName(name) ? await this.triggers.get(name) : undefined;
    if (!found) return answer(404, { message: `trigger ${JSON.stringify(name.slice(0, 100))} not found` });
    const trigger = found.value;
    const secret = await this.secrets.valueOf(trigger.secret);
    if (secret === undefined) {
      this.log.warn(`trigger "${name}": its webhook secret "${trigger.secret}" is not stored (or this gateway has no CONVEYOR_SECRET_KEY); refusing deliveries`);
      this.metrics.hook(name, 'refused');
      return answer(401, { message: "the trigger's webhook secret cannot be read on this gateway, so no signature can be checked" });
    }
    const bad = signatureProblem(trigger.source, headers, raw, secret);
    if (bad) {
      this.metrics.hook(name, 'refused');
      return answer(401, { message: bad });
    }
    let event: HookEvent;
    try {
      const parsed = parseHook(trigger.source, headers, readBody(headers, raw));
      if (parsed.kind === 'ignored') return this.ignored(trigger, parsed.reason, parsed.delivery);
      event = parsed.value;
    } catch (err) {
      if (!(err instanceof HookPayloadError)) throw err;
      this.metrics.hook(name, 'refused');
      return answer(400, { message: `not a ${trigger.source} event Conveyor can read: ${err.message}` });
    }
    const why = ignoredBecause(trigger, event);
    if (why) return this.ignored(trigger, why, event.delivery, event);
    return this.start(trigger, event);
  }

  private async ignored(trigger: Trigger, reason: string, delivery: string | undefined, event?: HookEvent): Promise<HookAnswer> {
    this.metrics.hook(trigger.name, 'ignored');
    await this.record(trigger.name, { at: new Date().toISOString(), delivery: delivery ?? '', ...(event ? { event: event.event } : {}), outcome: 'ignored', reason });
    return answer(200, { ignored: reason });
  }

  private async start(trigger: Trigger, event: HookEvent): Promise<HookAnswer> {
    const key = `${trigger.name}.${createHash('sha256').update(event.delivery).digest('hex').slice(0, 32)}`;
    const taken = await this.take(key);
    if (taken.done) {
      this.metrics.hook(trigger.name, 'duplicate');
      return answer(202, { runid: taken.done.runid, resource: taken.done.resource!, version: taken.done.version!, duplicate: true });
    }
    if (!taken.runid) {
      return answer(409, { message: `another copy of delivery ${event.delivery} is starting its run right now; send it again in a few seconds` });
    }
    const runid = taken.runid;
    const resourceName = resourceNameFor(trigger, event);
    const spec = specFor(trigger, event);
    const origin: TriggerOrigin = {
      trigger: trigger.name,
      source: trigger.source,
      event: event.event,
      delivery: event.delivery,
      repository: typeof spec.repository === 'string' ? spec.repository : event.repository,
      ref: event.ref,
      commit: event.commit,
      ...(event.project ? { project: event.project } : {}),
      ...(event.sender ? { sender: event.sender } : {}),
      ...(event.message ? { message: event.message } : {}),
      ...(trigger.status ? { status: trigger.status } : {}),
    };
    const metadata: JsonObject = { trigger: trigger.name, event: event.event, delivery: event.delivery };
    try {
      const version = await this.write(trigger, resourceName, spec, metadata, runid, origin);
      await this.deliveries.put(key, JSON.stringify({ runid, at: Date.now(), resource: resourceName, version } satisfies DeliveryRecord));
      this.metrics.hook(trigger.name, 'started');
      this.log.log(`trigger "${trigger.name}": ${event.event} of ${event.ref} at ${event.commit.slice(0, 12)} (delivery ${event.delivery}) started run ${runid}`);
      await this.record(trigger.name, { at: new Date().toISOString(), delivery: event.delivery, event: event.event, outcome: 'started', runid, resource: resourceName, version });
      return answer(202, { runid, resource: resourceName, version });
    } catch (err) {
      // What the API would refuse with a 4xx (a spec the definition does not take, a pipeline gone): the
      // trigger's configuration, not the delivery, is wrong. Forget the delivery so it can be sent again once fixed.
      if ((err instanceof HttpException && err.getStatus() < 500) || err instanceof NotFoundError) {
        await this.deliveries.delete(key).catch(() => undefined);
        this.metrics.hook(trigger.name, 'rejected');
        const reason = messageOf(err);
        this.log.warn(`trigger "${trigger.name}": delivery ${event.delivery} started no run: ${reason}`);
        await this.record(trigger.name, { at: new Date().toISOString(), delivery: event.delivery, event: event.event, outcome: 'rejected', resource: resourceName, reason });
        return answer(422, { message: `the event is valid, but the trigger's version was refused: ${reason}` });
      }
      throw err;
    }
  }

  /**
   * Takes the delivery (records it with a new run id), or finds the copy that did: `done` when
   * its version is written, `runid` (the recorded one) when its taker stopped and this copy takes
   * over, neither when another copy is still at it.
   */
  private async take(key: string): Promise<{ runid?: string; done?: DeliveryRecord }> {
    const runid = newRunId();
    try {
      await this.deliveries.create(key, JSON.stringify({ runid, at: Date.now() } satisfies DeliveryRecord));
      return { runid };
    } catch (err) {
      if (!isWrongRevision(err) && !/key exists/i.test((err as Error).message)) throw err;
    }
    const deadline = Date.now() + WAIT_FOR_TAKER_MS;
    for (;;) {
      const e = await this.deliveries.get(key);
      if (!e || e.operation !== 'PUT') return this.take(key); // deleted meanwhile (a refused version): start afresh
      const rec = e.json<DeliveryRecord>();
      if (rec.version !== undefined) return { done: rec };
      // The taker stopped after writing its version but before recording it: the run's record tells.
      const run = await this.runs.get(rec.runid);
      if (run) return { done: { ...rec, resource: run.value.resource.name, version: run.value.resource.version } };
      if (Date.now() - rec.at > TAKEOVER_AFTER_MS) {
        try {
          await this.deliveries.update(key, JSON.stringify({ runid: rec.runid, at: Date.now() } satisfies DeliveryRecord), e.revision);
          return { runid: rec.runid };
        } catch (err) {
          if (!isWrongRevision(err)) throw err;
          continue;
        }
      }
      if (Date.now() > deadline) return {};
      await new Promise((r) => setTimeout(r, WAIT_STEP_MS));
    }
  }

  /** The event's version through the path `POST`/`PUT /resources` take; a version a stopped taker wrote for this run id is started, not written again. */
  private async write(t: Trigger, name: string, spec: JsonObject, metadata: JsonObject, runid: string, origin: TriggerOrigin): Promise<number> {
    const latest = await this.resources.latest(t.resource, name);
    if (latest?.value.runid === runid) {
      await this.resourcesService.startStoredRun(latest.value, t.pipeline);
      return latest.value.version;
    }
    const update = () => this.resourcesService.update(t.resource, name, { spec, metadata, pipeline: t.pipeline }, undefined, runid, origin);
    const written = latest
      ? await update()
      : await this.resourcesService.create({ name, resource: t.resource, pipeline: t.pipeline, spec, metadata }, runid, origin).catch((err) => {
          // Made meanwhile (by a user or another delivery): a new version of it, then.
          if (!(err instanceof ConflictError)) throw err;
          return update();
        });
    return written.version;
  }

  /** The trigger's last delivery, moved only forward; a trigger deleted meanwhile is left deleted. */
  private async record(name: string, last: HookDeliveryOutcome): Promise<void> {
    await this.triggers
      .mutate(name, (cur) => (cur.last && cur.last.at > last.at ? undefined : { ...cur, last }))
      .catch((err) => {
        if (!(err instanceof NotFoundError)) this.log.warn(`trigger "${name}": could not record its last delivery: ${(err as Error).message}`);
      });
  }
}

function answer(status: number, body: JsonObject): HookAnswer {
  return { status, body };
}

function messageOf(err: unknown): string {
  if (err instanceof HttpException) {
    const r = err.getResponse();
    if (typeof r === 'object' && r !== null && typeof (r as { message?: unknown }).message === 'string') return (r as { message: string }).message;
  }
  return (err as Error).message;
}

/** JSON, or GitHub's form encoding (`payload=<json>`); the signature was checked on these bytes. */
function readBody(headers: HookHeaders, raw: Buffer): unknown {
  const type = String(headers['content-type'] ?? '').toLowerCase();
  let text = raw.toString('utf8');
  if (type.startsWith('application/x-www-form-urlencoded')) {
    const payload = new URLSearchParams(text).get('payload');
    if (payload === null) throw new HookPayloadError('a form-encoded body without a "payload" field');
    text = payload;
  }
  try {
    return JSON.parse(text);
  } catch {
    throw new HookPayloadError('the body is not JSON');
  }
}
