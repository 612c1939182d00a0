// META: global=window,worker
// META: script=resources/urlpattern-hasregexpgroups-tests.js
