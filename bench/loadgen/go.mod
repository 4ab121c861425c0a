module notebook-platform/bench/loadgen

go 1.22
