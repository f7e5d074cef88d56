#!/usr/bin/env node
// Offline check of deploy/k8s where kubeconform is not available: parses every YAML document
// and checks the fields Kubernetes requires and the references between them (selectors,
// volumes, named ports, ConfigMaps). Prints each problem and exits 1 if there is any.
'use strict';
const { readFileSync } = require('node:fs');
const { join } = require('node:path');
const yaml = require('js-yaml');

const problems = [];
const fail = (where, what) => problems.push(`${where}: ${what}`);
const isObj = (v) => typeof v === 'object' && v !== null && !Array.isArray(v);
const dnsLabel = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const WORKLOADS = new Set(['Deployment', 'DaemonSet', 'StatefulSet']);

function load(file) {
  try {
    return yaml.loadAll(readFileSync(file, 'utf8')).filter((d) => d != null);
  } catch (err) {
    fail(file, `not valid YAML: ${err.message}`);
    return [];
  }
}

function checkPod(where, pod, configMaps) {
  const spec = pod?.spec;
  if (!isObj(spec) || !Array.isArray(spec.containers) || spec.containers.length === 0) return fail(where, 'spec.template.spec.containers is empty');
  const volumes = new Set((spec.volumes ?? []).map((v) => v.name));
  for (const c of spec.containers) {
    const at = `${where} container ${c.name}`;
    if (!c.name || !dnsLabel.test(c.name)) fail(at, 'name must be a DNS label');
    if (typeof c.image !== 'string' || !c.image) fail(at, 'image is required');
    for (const e of c.env ?? []) {
      if (typeof e.name !== 'string' || !e.name) fail(at, 'env entry without a name');
      if ((e.value !== undefined) === (e.valueFrom !== undefined)) fail(at, `env ${e.name}: exactly one of value and valueFrom`);
      if (e.value !== undefined && typeof e.value !== 'string') fail(at, `env ${e.name}: value must be a string (quote it)`);
    }
    for (const s of c.envFrom ?? []) if (s.configMapRef && !configMaps.has(s.configMapRef.name)) fail(at, `envFrom names a missing ConfigMap ${s.configMapRef.name}`);
    for (const m of c.volumeMounts ?? []) if (!volumes.has(m.name)) fail(at, `volumeMount ${m.name} has no volume`);
    for (const p of c.ports ?? []) {
      if (!Number.isInteger(p.containerPort)) fail(at, 'containerPort must be an integer');
      if (p.name && (p.name.length > 15 || !dnsLabel.test(p.name))) fail(at, `port name ${p.name} is not an IANA service name`);
    }
  }
}

function checkManifests(file) {
  const docs = load(file);
  const configMaps = new Set(docs.filter((d) => d.kind === 'ConfigMap').map((d) => d.metadata?.name));
  for (const [i, d] of docs.entries()) {
    const where = `${file} document ${i + 1} (${d.kind ?? '?'} ${d.metadata?.name ?? '?'})`;
    if (typeof d.apiVersion !== 'string' || typeof d.kind !== 'string') { fail(where, 'apiVersion and kind are required'); continue; }
    if (!isObj(d.metadata) || typeof d.metadata.name !== 'string' || !dnsLabel.test(d.metadata.name)) fail(where, 'metadata.name must be a DNS label');
    if (d.kind !== 'Namespace' && !d.metadata?.namespace) fail(where, 'metadata.namespace is missing');
    if (d.kind === 'ConfigMap') for (const [k, v] of Object.entries(d.data ?? {})) if (typeof v !== 'string') fail(where, `data.${k} must be a string (quote it)`);
    if (WORKLOADS.has(d.kind)) {
      if (d.apiVersion !== 'apps/v1') fail(where, 'apiVersion must be apps/v1');
      const sel = d.spec?.selector?.matchLabels ?? {};
      const labels = d.spec?.template?.metadata?.labels ?? {};
      if (Object.keys(sel).length === 0) fail(where, 'spec.selector.matchLabels is required');
      for (const [k, v] of Object.entries(sel)) if (labels[k] !== v) fail(where, `selector ${k}=${v} does not match the pod template's labels`);
      for (const [k, v] of Object.entries(d.spec?.template?.spec?.nodeSelector ?? {})) if (typeof v !== 'string') fail(where, `nodeSelector ${k} must be a string (quote it)`);
      checkPod(where, d.spec?.template, configMaps);
    }
    if (d.kind === 'Service') {
      const sel = d.spec?.selector ?? {};
      const target = docs.filter((w) => WORKLOADS.has(w.kind)).find((w) =>
        Object.entries(sel).every(([k, v]) => w.spec?.template?.metadata?.labels?.[k] === v));
      if (!target) { fail(where, 'selector matches no workload in this file'); continue; }
      const named = new Set(target.spec.template.spec.containers.flatMap((c) => (c.ports ?? []).map((p) => p.name)));
      for (const p of d.spec?.ports ?? []) {
        if (!Number.isInteger(p.port)) fail(where, 'port must be an integer');
        if (typeof p.targetPort === 'string' && !named.has(p.targetPort)) fail(where, `targetPort ${p.targetPort} is no named port of ${target.metadata.name}`);
      }
    }
  }
  return docs.length;
}

const dir = __dirname;
const count = checkManifests(join(dir, 'conveyor.yaml'));
const [values] = load(join(dir, 'nats-values.yaml'));
if (values?.config?.cluster?.enabled !== true || values?.config?.cluster?.replicas !== 3) fail('nats-values.yaml', 'config.cluster must be enabled with 3 replicas');
if (values?.config?.jetstream?.enabled !== true || values?.config?.jetstream?.fileStore?.enabled !== true) fail('nats-values.yaml', 'JetStream with file storage must be enabled');
// The server image: nats-server's minor line deploy/local/setup.sh installs (deploy/lint.sh passes it).
const natsLine = process.env.NATS_IMAGE_LINE || '2.15';
const image = values?.container?.image ?? {};
const lineTag = new RegExp(`^${natsLine.replace(/\./g, '\\.')}([.-]|$)`);
if (image.repository !== 'nats' || typeof image.tag !== 'string' || !lineTag.test(image.tag)) {
  fail('nats-values.yaml', `container.image must be nats with a ${natsLine} tag (e.g. "${natsLine}-alpine"), not ${image.repository ?? '(chart default)'}:${image.tag ?? '(chart default)'}`);
}

for (const p of problems) console.error(p);
console.log(problems.length ? `deploy/k8s: ${problems.length} problem(s)` : `deploy/k8s: ${count} manifests and the NATS values are well-formed`);
process.exit(problems.length ? 1 : 0);
