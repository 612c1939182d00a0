"""The standard-library modules a client script may import.

componentize-py snapshots the interpreter after this module is imported: a module imported here
is in the component, any other module does not exist at run time (`ImportError`). This list is
therefore the allow-list, and changing it means rebuilding the component.

Left out on purpose: modules that need files, processes or native libraries the sandbox does not
have (ssl, ctypes, sqlite3, lzma, bz2, mmap, multiprocessing, subprocess, zoneinfo data).
`os`, `io` and `socket` are present, but the sandbox grants no files, no environment and no
network, so what they can reach is empty.
"""

# Data and text
import base64
import binascii
import csv
import difflib
import html
import json
import re
import string
import textwrap
import unicodedata
import encodings.idna  # socket.getaddrinfo encodes host names with it

# Numbers
import cmath
import decimal
import fractions
import math
import numbers
import random
import statistics

# Time
import calendar
import datetime
import time

# Collections and functional tools
import bisect
import collections
import collections.abc
import copy
import dataclasses
import enum
import functools
import graphlib
import heapq
import itertools
import operator
import typing

# Binary data, hashing and compression
import array
import hashlib
import hmac
import secrets
import struct
import uuid
import zlib

# Misc
import abc
import contextlib
import io
import ipaddress
import os
import pprint
import shlex
import socket
import traceback
import types
import urllib.parse
import warnings
import weakref

MODULES = sorted(
    name
    for name, value in dict(globals()).items()
    if isinstance(value, type(json)) and not name.startswith("_")
)
