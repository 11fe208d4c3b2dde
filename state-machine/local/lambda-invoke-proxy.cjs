// Local Lambda Invoke API, as AWS answers it: forwards each Invoke to cargo-lambda's
// runtime emulator and, when the function failed, answers like Lambda does (HTTP 200,
// X-Amz-Function-Error: Unhandled, the error document as payload) instead of HTTP 500, so
// that Step Functions' Retry and Catch see the function's error name.
// Usage: node lambda-invoke-proxy.cjs LISTEN_PORT CARGO_LAMBDA_PORT
// KEYROTOR_SFN_INVOCATIONS: a file receiving every invocation (function, request and response
// payloads, duration in milliseconds), one JSON document a line.
'use strict';
const fs = require('node:fs');
const http = require('node:http');

const invocations = process.env.KEYROTOR_SFN_INVOCATIONS || '';

const [listen, upstream] = process.argv.slice(2).map(Number);
if (!listen || !upstream) {
  console.error('usage: lambda-invoke-proxy.cjs LISTEN_PORT CARGO_LAMBDA_PORT');
  process.exit(2);
}

http
  .createServer((req, res) => {
    const body = [];
    req.on('data', (chunk) => body.push(chunk));
    req.on('end', () => {
      const started = process.hrtime.bigint();
      const forward = http.request(
        { host: '127.0.0.1', port: upstream, path: req.url, method: req.method, headers: req.headers },
        (answer) => {
          const reply = [];
          answer.on('data', (chunk) => reply.push(chunk));
          answer.on('end', () => {
            const payload = Buffer.concat(reply);
            if (invocations) {
              const request = Buffer.concat(body).toString();
              const durationMs = Number(process.hrtime.bigint() - started) / 1e6;
              const record = { path: req.url, request, status: answer.statusCode, response: payload.toString(), duration_ms: durationMs };
              fs.appendFileSync(invocations, JSON.stringify(record) + '\n');
            }
            let failed = false;
            if (answer.statusCode === 500) {
              try {
                failed = typeof JSON.parse(payload.toString()).errorType === 'string';
              } catch {
                failed = false;
              }
            }
            if (failed) {
              res.writeHead(200, {
                'Content-Type': 'application/json',
                'X-Amz-Function-Error': 'Unhandled',
                'X-Amz-Executed-Version': '$LATEST',
              });
            } else {
              res.writeHead(answer.statusCode, answer.headers);
            }
            res.end(payload);
          });
        },
      );
      forward.on('error', (e) => {
        res.writeHead(502, { 'Content-Type': 'application/json' });
        res.end(JSON.stringify({ errorType: 'Lambda.ServiceException', errorMessage: String(e) }));
      });
      forward.end(Buffer.concat(body));
    });
  })
  .listen(listen, '127.0.0.1');
