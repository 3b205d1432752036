// A real application for the L4 tests on the official Nacos Node.js client (the `nacos` npm
// package: HTTP long polling on `/v1/cs/configs/listener`, the 1.x protocol, and v1 HTTP naming
// with heartbeats). Nothing here speaks to Nacos itself: the library does.
//
// Environment (credentials never in argv):
//   APP_SERVER      host:port of the one node it talks to
//   APP_NAMESPACE   namespace id
//   APP_GROUP       config group
//   APP_DATA_IDS    comma-separated dataIds to subscribe to
//   APP_SERVICE     service name to register (optional), APP_IP / APP_PORT its instance
//   NACOS_USERNAME / NACOS_PASSWORD
//
// Prints one JSON line per event on stdout: {"event":"config","dataId":..,"md5":..} each time the
// library hands it a config (the md5 is what it holds and polls with), {"event":"registered"},
// {"event":"ready"} once every dataId arrived. Runs until its stdin closes, then deregisters.
'use strict';

const { NacosConfigClient, NacosNamingClient } = require('nacos');
const crypto = require('crypto');

const env = (k, d) => process.env[k] || d;
const server = env('APP_SERVER');
const namespace = env('APP_NAMESPACE', '');
const group = env('APP_GROUP', 'DEFAULT_GROUP');
const dataIds = env('APP_DATA_IDS', '').split(',').filter(Boolean);
const service = env('APP_SERVICE', '');
const ip = env('APP_IP', '127.0.0.1');
const port = Number(env('APP_PORT', '0'));
const username = env('NACOS_USERNAME', '');
const password = env('NACOS_PASSWORD', '');
const say = (o) => process.stdout.write(JSON.stringify(o) + '\n');
const silent = { info() {}, warn() {}, debug() {}, error() {} };

async function main() {
  const config = new NacosConfigClient({
    serverAddr: server,
    namespace,
    username,
    password,
    requestTimeout: 6000,
  });
  config.on('error', (e) => say({ event: 'error', message: String(e && e.message) }));
  await config.ready();
  const seen = new Set();
  for (const dataId of dataIds) {
    config.subscribe({ dataId, group }, (content) => {
      // The md5 the library keeps for this key (ClientWorker: getMD5String of the content).
      const md5 = crypto.createHash('md5').update(content || '', 'utf8').digest('hex');
      say({ event: 'config', dataId, md5 });
      seen.add(dataId);
      if (seen.size === dataIds.length) say({ event: 'ready' });
    });
  }
  let naming = null;
  if (service) {
    naming = new NacosNamingClient({
      serverList: server,
      namespace,
      username,
      password,
      logger: silent,
    });
    await naming.ready();
    await naming.registerInstance(service, { ip, port }, group);
    say({ event: 'registered', service });
  }
  process.stdin.resume();
  process.stdin.on('end', async () => {
    try {
      if (naming) await naming.deregisterInstance(service, { ip, port }, group);
    } catch (e) {
      // the test is over either way
    }
    config.close();
    if (naming) naming.close();
    process.exit(0);
  });
}

main().catch((e) => {
  say({ event: 'error', message: String(e && e.stack) });
  process.exit(1);
});
