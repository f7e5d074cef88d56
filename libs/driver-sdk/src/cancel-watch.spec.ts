import { MAX_STOP_ORDERS, StopOrders, type StopOrder } from './cancel-watch';

const cancel: StopOrder = { status: 'cancelled', message: 'the run was cancelled' };
const failed: StopOrder = { status: 'failed', message: 'machine m1 is gone' };
const DAY = 86_400_000;

describe('StopOrders', () => {
  let now = 0;
  const clock = () => now;
  beforeEach(() => {
    now = 1_000 * DAY;
  });

  it('never holds more than maxEntries, dropping the oldest first', () => {
    const orders = new StopOrders(7 * DAY, 100, clock);
    for (let i = 0; i < 10_000; i++) {
      orders.set(`run-${i}`, cancel);
      now += 1;
      expect(orders.size).toBeLessThanOrEqual(100);
    }
    expect(orders.size).toBe(100);
    expect(orders.get('run-9899')).toBeUndefined();
    expect(orders.get('run-9900')).toEqual(cancel);
    expect(orders.get('run-9999')).toEqual(cancel);
  });

  it('is bounded by default', () => {
    const orders = new StopOrders(Infinity, undefined, clock);
    for (let i = 0; i < MAX_STOP_ORDERS + 500; i++) orders.set(`run-${i}`, cancel);
    expect(orders.size).toBe(MAX_STOP_ORDERS);
    expect(orders.get('run-0')).toBeUndefined();
  });

  it('forgets an order older than maxAgeMs (the cancels bucket forgot it too)', () => {
    const orders = new StopOrders(7 * DAY, 1_000, clock);
    orders.set('old', cancel, now - 8 * DAY);
    expect(orders.get('old')).toBeUndefined();
    expect(orders.size).toBe(0);

    orders.set('a', cancel);
    now += 3 * DAY;
    orders.set('b', failed);
    expect(orders.get('a')).toEqual(cancel);
    now += 4 * DAY + 1;
    // A new order prunes the expired ones at the old end; a lookup drops an expired one it meets.
    orders.set('c', cancel);
    expect(orders.size).toBe(2);
    expect(orders.get('a')).toBeUndefined();
    expect(orders.get('b')).toEqual(failed);
    now += 3 * DAY;
    expect(orders.get('b')).toBeUndefined();
    expect(orders.get('c')).toEqual(cancel);
  });

  it('an order learnt again (the core signal, then the bucket) is the newest and keeps its latest form', () => {
    const orders = new StopOrders(7 * DAY, 2, clock);
    orders.set('a', cancel);
    orders.set('b', cancel);
    orders.set('a', failed, now - 1_000); // the bucket's copy, written a moment before the signal arrived
    orders.set('c', cancel);
    expect(orders.get('b')).toBeUndefined();
    expect(orders.get('a')).toEqual(failed);
    expect(orders.get('c')).toEqual(cancel);
  });

  it('drops an order whose key was deleted from the bucket', () => {
    const orders = new StopOrders(7 * DAY, 10, clock);
    orders.set('a', cancel);
    orders.delete('a');
    expect(orders.get('a')).toBeUndefined();
    expect(orders.size).toBe(0);
  });

  it('refuses a cap below one', () => {
    expect(() => new StopOrders(DAY, 0)).toThrow(/maxEntries/);
  });
});
