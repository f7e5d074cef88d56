import { Injectable, type OnModuleDestroy } from '@nestjs/common';
import type { NextFunction, Request, Response } from 'express';

/**
 * Set when the gateway begins to shut down. AppModule provides it, and the root module's
 * destroy hooks run first, so it closes before any stream, watch or NATS connection does.
 */
@Injectable()
export class ShutdownGate implements OnModuleDestroy {
  closing = false;

  onModuleDestroy(): void {
    this.closing = true;
  }
}

/**
 * Requests that arrive while the gateway shuts down are answered 503 at once. Clients that
 * reconnect at once (a browser's log stream ended by the shutdown) would otherwise start a
 * watch on a NATS connection that is closing, wait for ever, and hold the HTTP server's close
 * until Node's request timeout (5 minutes).
 */
export function refuseWhileClosing(gate: ShutdownGate) {
  return (_req: Request, res: Response, next: NextFunction): void => {
    if (!gate.closing) return next();
    res
      .status(503)
      .set({ 'Retry-After': '1', Connection: 'close' })
      .json({ statusCode: 503, error: 'Service Unavailable', message: 'the gateway is shutting down; try again in a moment (or another gateway)' });
  };
}
