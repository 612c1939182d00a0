// META: global=window,worker
// META: script=resources/urlpatterntests.js
