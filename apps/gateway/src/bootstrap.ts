import type { INestApplication, NestApplicationOptions } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import type { NestExpressApplication } from '@nestjs/platform-express';
import { DocumentBuilder, SwaggerModule } from '@nestjs/swagger';
import { raw, type NextFunction, type Request, type Response } from 'express';
import { TokenAuthenticator } from '@conveyor/auth';
import type { ConveyorConfig } from '@conveyor/config';
import { httpServerSpans, startTracing } from '@conveyor/tracing';
import { AppModule } from './app.module';
import { authMiddleware } from './auth/auth.middleware';
import { declareBearerAuth } from './auth/openapi-security';
import { HttpErrorFilter, toHttpError } from './common/http-error.filter';
import { ShutdownGate, refuseWhileClosing } from './common/shutdown-gate';
import { validationPipe } from './common/validation';
import { dashboardDir, webDashboard } from './web/dashboard';

/**
 * The gateway, configured but not listening: main.ts listens on the configured port, tests
 * on a free one. Everything that shapes HTTP behaviour (body limit, validation, error JSON,
 * OpenAPI) is set here so that both get the same app.
 */
export async function createGateway(config: ConveyorConfig, options: NestApplicationOptions = {}): Promise<INestApplication> {
  // Before the app: its logger's lines carry trace ids from the start. Stopped by TracingShutdown.
  startTracing(config.tracing);
  const app = await NestFactory.create<NestExpressApplication>(AppModule.forRoot(config), { ...options, bodyParser: false });
  // First of all: once shutting down, nothing new starts (see refuseWhileClosing).
  app.use(refuseWhileClosing(app.get(ShutdownGate)));
  // The web dashboard's files (no data in them) before the token check, so its sign-in page loads without one.
  app.use(webDashboard(dashboardDir(config.http.webDir, __dirname)));
  // Then, before a body is read: every other path but /health needs a token when tokens are configured.
  app.use(authMiddleware(new TokenAuthenticator(config.auth.tokens)));
  // Webhooks keep their body as bytes: the forge signed those exact bytes (see the triggers' HookDeliveries).
  app.use('/hooks', raw({ type: () => true, limit: config.http.hookBodyLimitBytes }));
  // Our own parser, so that the limit is the configured one; its errors become 400/413 in HttpErrorFilter.
  app.useBodyParser('json', { limit: config.http.bodyLimitBytes });
  // Body-parser errors (invalid JSON, too large, bad charset) are answered here, before any route.
  app.use((err: unknown, _req: Request, res: Response, _next: NextFunction) => {
    const body = toHttpError(err);
    res.status(body.statusCode).json(body);
  });
  // A span per request that may start a run; after the body parsers, so the handler runs inside it.
  if (config.tracing) app.use(httpServerSpans());
  // Express would add weak ETags of its own to every GET; ours are revisions and versions.
  app.set('etag', false);
  app.disable('x-powered-by');
  app.useGlobalPipes(validationPipe());
  app.useGlobalFilters(new HttpErrorFilter());

  const openApi = new DocumentBuilder()
    .setTitle('Conveyor API gateway')
    .setDescription('Resource definitions, pipelines, resources (versioned) and runs of Conveyor, a CI/CD framework on NATS JetStream')
    .setVersion('1')
    .addBearerAuth({ type: 'http', scheme: 'bearer', description: 'A token of CONVEYOR_API_TOKENS (or CONVEYOR_API_TOKENS_FILE); its role is read, write or admin' }, 'bearer')
    .build();
  SwaggerModule.setup('docs', app, () => declareBearerAuth(SwaggerModule.createDocument(app, openApi)));
  return app;
}
