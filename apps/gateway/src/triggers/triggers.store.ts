import type { KV } from '@nats-io/kv';
import type { Trigger } from '@conveyor/contracts';
import { JsonKv } from '@conveyor/store';

/** Webhook triggers by name, in the triggers bucket (compare-and-set on every write, as the other stores). */
export class TriggersStore extends JsonKv<Trigger> {
  constructor(kv: KV) {
    super(kv, 'trigger');
  }
}
