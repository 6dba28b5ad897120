'use strict';
// Preloaded with `node --require loopback.js PROGRAM`: every TCP server of the
// process listens on 127.0.0.1, whatever address PROGRAM asked for.
//
// kinesis-mock calls `server.listen(port, callback)`, which Node binds to every
// interface (`::`), and it has no setting for the address. Rewriting the
// arguments of `net.Server.prototype.listen` (which http, https and tls servers
// inherit) keeps every listener on loopback: a port number (or none) becomes
// `{port, host: '127.0.0.1'}`; an options object gets `host` replaced. A Unix
// socket path is left as it is (it is local already); listening on an inherited
// handle or file descriptor is refused, since its address cannot be changed.
//
// Each listener is reported on stderr once bound, e.g.
//   kclpy-local loopback: listening on 127.0.0.1:4568
//
// It also watches the lifeline its parent may hand it: KCLPY_LOCAL_LIFELINE
// names the read end of a pipe whose write end only the parent holds; at its
// end (the parent is gone, however it ended) the process stops as on SIGTERM.

const fs = require('fs');
const net = require('net');

const HOST = '127.0.0.1';
const PREFIX = 'kclpy-local loopback:';
const originalListen = net.Server.prototype.listen;

function isPortLike(value) {
  return (
    value === undefined ||
    value === null ||
    typeof value === 'number' ||
    (typeof value === 'string' && /^\d+$/.test(value))
  );
}

function refuse(what) {
  const err = new Error(`${PREFIX} refusing to listen on ${what}: only ${HOST} is allowed`);
  err.code = 'ERR_KCLPY_LOCAL_LOOPBACK_ONLY';
  throw err;
}

// The arguments of a listen() call with every TCP address forced onto HOST;
// `null` when the call is left as it is (a Unix socket path).
function loopbackArgs(args) {
  const last = args[args.length - 1];
  const callback = typeof last === 'function' ? last : undefined;
  const given = callback ? args.slice(0, -1) : args.slice();
  const first = given[0];
  let options;
  if (first !== null && typeof first === 'object') {
    if (first._handle !== undefined || first.handle !== undefined || first.fd !== undefined) {
      refuse('an inherited handle');
    }
    if (first.path !== undefined) {
      return null;
    }
    options = Object.assign({}, first);
  } else if (isPortLike(first)) {
    options = { port: first === undefined || first === null ? 0 : Number(first) };
    // listen(port, host?, backlog?): the backlog is the first number after the port.
    const backlog = given.slice(1, 3).find((v) => typeof v === 'number');
    if (backlog !== undefined) {
      options.backlog = backlog;
    }
  } else {
    return null; // listen(path[, backlog]): a Unix socket
  }
  options.host = HOST;
  delete options.ipv6Only;
  return callback ? [options, callback] : [options];
}

net.Server.prototype.listen = function listenOnLoopback(...args) {
  const rewritten = loopbackArgs(args);
  if (rewritten !== null) {
    this.once('listening', () => {
      const address = this.address();
      if (address && typeof address === 'object') {
        process.stderr.write(`${PREFIX} listening on ${address.address}:${address.port}\n`);
      }
    });
  }
  return originalListen.apply(this, rewritten === null ? args : rewritten);
};

function watchLifeline() {
  const value = process.env.KCLPY_LOCAL_LIFELINE;
  delete process.env.KCLPY_LOCAL_LIFELINE; // not for this process's own children
  if (value === undefined || !/^\d+$/.test(value)) {
    return;
  }
  try {
    fs.fstatSync(Number(value));
  } catch (err) {
    process.stderr.write(`${PREFIX} KCLPY_LOCAL_LIFELINE=${value} is not an open descriptor\n`);
    return;
  }
  const end = () => process.kill(process.pid, 'SIGTERM');
  // A pipe handle that does not keep the process alive: a program that would
  // end by itself still ends.
  const lifeline = new net.Socket({ fd: Number(value), readable: true, writable: false });
  lifeline.on('data', () => {});
  lifeline.on('end', end);
  lifeline.on('error', end);
  lifeline.unref();
}

watchLifeline();
