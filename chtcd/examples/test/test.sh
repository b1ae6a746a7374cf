#!/bin/bash

echo "Running on $(hostname) in directory $(pwd)."
echo "Arguments are '${1}' and '${2}'."

echo "This is an error message" >&2

grep -i "badger" test.txt > result.txt
