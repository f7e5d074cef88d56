import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';

const here = (p: string) => fileURLToPath(new URL(p, import.meta.url));

/**
 * The dashboard is built into dist/web, beside the compiled gateway that serves it at `/`
 * (same origin as the API: no CORS, and every asset is in the bundle, so it works offline).
 * `npm run build` runs this after tsc.
 */
export default defineConfig({
  root: here('.'),
  base: '/',
  publicDir: here('public'),
  esbuild: { jsx: 'automatic', jsxImportSource: 'preact' },
  build: {
    outDir: here('../../dist/web'),
    emptyOutDir: true,
    target: 'es2022',
    sourcemap: true,
    reportCompressedSize: true,
  },
  server: {
    // `npx vite apps/web` against a gateway on :8080 (npm start), for working on the dashboard.
    proxy: Object.fromEntries(
      ['/runs', '/logs', '/pipelines', '/resource-definitions', '/resources', '/drivers', '/dead-letters', '/secrets', '/schedules', '/triggers', '/whoami', '/health'].map((p) => [p, 'http://127.0.0.1:8080']),
    ),
  },
});
