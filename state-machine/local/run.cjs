// Runs one of keyrotor's state machines with aws-local-stepfunctions and prints one JSON
// document: the execution's status, output or error, and the events that matter (states
// entered, failed, retried and caught), for the parent and every child execution.
// The sweep's states:startExecution.sync task runs the child machine here, as a nested
// local execution; Wait and Retry pauses are shortened to PAUSE_MS.
// Usage: node run.cjs DEFINITIONS_DIR MACHINE PAUSE_MS < input.json
// Lambda tasks go to AWS_ENDPOINT_URL_LAMBDA (see scripts/sfn-local.sh).
'use strict';
require('./node20-shim.cjs');
const fs = require('node:fs');
const path = require('node:path');
const { StateMachine } = require('aws-local-stepfunctions');

const [dir, machine, pauseText] = process.argv.slice(2);
const pause = Number(pauseText || 20);
const events = [];
// KEYROTOR_SFN_HISTORY: a file receiving every event with its payloads, one JSON a line.
const history = process.env.KEYROTOR_SFN_HISTORY || '';
const executions = [];

function definition(name) {
  return JSON.parse(fs.readFileSync(path.join(dir, `${name}.asl.json`), 'utf8'));
}

function errorOf(e) {
  // ExecutionError carries the error that ended the execution as its cause.
  const inner = (e && e.cause) || e;
  return { Error: (inner && inner.name) || 'States.Runtime', Cause: String((inner && inner.message) || e) };
}

async function execute(name, input, label) {
  const stateMachine = new StateMachine(definition(name), { validationOptions: { checkArn: false } });
  const execution = stateMachine.run(input, {
    overrides: {
      waitTimeOverrides: { WaitForNextStep: pause },
      retryIntervalOverrides: Object.fromEntries(
        ['Plan', 'IamKeys', 'Certs', 'Migration', 'Advance', 'RotateApiKey', 'Decode', 'Contain', 'Investigate', 'Notify'].map((s) => [s, pause]),
      ),
      taskResourceLocalHandlers: {
        // states:startExecution starts the child and returns; locally the child runs to its
        // end first (its Waits are short), and a failed child does not fail the parent, as
        // in Step Functions.
        RotateApiKey: async (task) => {
          const childInput = task && task.Input ? task.Input : { key: task.key, at: task.at };
          const name = (task && task.Name) || task.execution;
          try {
            await execute('api-key-rotation', childInput, name);
          } catch {
            // Recorded in `executions`, and by the child's own failure path.
          }
          return { ExecutionArn: `arn:aws:states:local:000000000000:execution:keyrotor-api-key-rotation:${name}`, StartDate: new Date().toISOString() };
        },
      },
    },
  });
  const logging = (async () => {
    for await (const event of execution.eventLogs) {
      if (history) {
        // The whole event, payloads included, as Step Functions' execution history has it.
        fs.appendFileSync(history, JSON.stringify({ execution: label, ...event }) + '\n');
      }
      if (['StateEntered', 'StateFailed', 'StateRetried', 'StateCaught'].includes(event.type)) {
        events.push({
          execution: label,
          type: event.type,
          state: event.state.name,
          ...(event.Error ? { error: event.Error } : {}),
          ...(event.retry ? { attempt: event.retry.attempt } : {}),
        });
      }
    }
  })();
  try {
    const output = await execution.result;
    executions.push({ execution: label, machine: name, status: 'SUCCEEDED' });
    return output;
  } catch (e) {
    executions.push({ execution: label, machine: name, status: 'FAILED', ...errorOf(e) });
    throw e;
  } finally {
    await logging.catch(() => {});
  }
}

(async () => {
  const input = JSON.parse(fs.readFileSync(0, 'utf8') || '{}');
  let result;
  try {
    const output = await execute(machine, input, machine);
    result = { status: 'SUCCEEDED', output };
  } catch (e) {
    result = { status: 'FAILED', ...errorOf(e) };
  }
  process.stdout.write(JSON.stringify({ ...result, executions, events }, null, 2) + '\n');
  process.exit(result.status === 'SUCCEEDED' ? 0 : 2);
})();
