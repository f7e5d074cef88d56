import { enableWireCheck, wireViolations } from './wire-check';

// Every e2e suite: each nats-server it starts (test/support/nats-server.ts) has its traffic
// checked against schemas/, and the suite fails at its end, naming the subject and the error,
// when a message broke the protocol. CONVEYOR_WIRE_CHECK=0 turns it off (to measure what it costs).
if (process.env.CONVEYOR_WIRE_CHECK !== '0') enableWireCheck();

afterAll(async () => {
  const found = await wireViolations();
  if (found) throw new Error(found);
});
