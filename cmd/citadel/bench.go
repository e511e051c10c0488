package main

import (
	"context"
	"io"
)

func runBench(ctx context.Context, args []string, out io.Writer) error {
	return nil
}
