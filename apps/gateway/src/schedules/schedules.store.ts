import type { KV } from '@nats-io/kv';
import type { Schedule } from '@conveyor/contracts';
import { JsonKv } from '@conveyor/store';

/** Schedules by name, in the schedules bucket (compare-and-set on every write, as the other stores). */
export class SchedulesStore extends JsonKv<Schedule> {
  constructor(kv: KV) {
    super(kv, 'schedule');
  }
}
