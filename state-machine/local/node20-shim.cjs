// aws-local-stepfunctions 3 uses Promise.withResolvers (Node 22); the machines this
// project supports have Node 20. This adds the one missing function, nothing else.
if (typeof Promise.withResolvers !== 'function') {
  Promise.withResolvers = function withResolvers() {
    let resolve;
    let reject;
    const promise = new Promise((res, rej) => {
      resolve = res;
      reject = rej;
    });
    return { promise, resolve, reject };
  };
}
