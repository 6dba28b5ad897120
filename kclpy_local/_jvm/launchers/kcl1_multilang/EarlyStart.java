/*
 * kclpy-local launcher for the KCL 1.x MultiLangDaemon: record processors started early.
 * SPDX-License-Identifier: Apache-2.0
 */
package com.amazonaws.services.kinesis.multilang;

import com.amazonaws.services.kinesis.clientlibrary.interfaces.v2.IRecordProcessor;
import com.amazonaws.services.kinesis.clientlibrary.interfaces.v2.IRecordProcessorFactory;
import com.amazonaws.services.kinesis.clientlibrary.lib.worker.KinesisClientLibConfiguration;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.kclpylocal.common.Launch;
import dev.kclpylocal.common.Lifeline;

import java.io.IOException;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ExecutorService;

/**
 * {@code processorStart = early}: the record processors' child processes are
 * started while the worker initializes, before any shard consumer asks for one.
 *
 * <p>KCL 1.15's {@code MultiLangRecordProcessor} starts its child in
 * {@code initialize()}, after the shard consumer has read its checkpoint, got its
 * shard iterator and started its prefetch: each shard's first batch then waits for
 * an interpreter to start and import the processor's code. Here the factory makes
 * the same stock processor, whose {@code startProcess()} (package-private, "for
 * testing", hence this package) takes a child started beforehand when one is
 * left, else starts one as the stock processor does. A child started early runs
 * the same command with the same environment, and is given the same messages from
 * {@code initialize} on; it only waits on its stdin longer.
 *
 * <p>{@link #start} starts up to the given number of children (the launcher
 * passes the stream's shards, at most {@code maxLeasesForWorker}), on the
 * caller's thread. {@link #stopLeftovers} stops those no shard took (the
 * launcher calls it some seconds after the worker reached STARTED, and at exit):
 * their stdin is closed, then they are destroyed. From then on each processor
 * starts its own child, as the stock daemon does. A child that failed to start
 * early is not retried early: its processor starts one itself, and reports the
 * failure as the stock daemon does.
 */
public final class EarlyStart implements IRecordProcessorFactory {
    public static final String KEY = "processorStart";
    public static final String EARLY = "early";
    public static final String ON_INITIALIZE = "initialize";

    private final String[] command;
    private final ExecutorService executor;
    private final KinesisClientLibConfiguration configuration;
    /** One per factory, as the stock factory has. */
    private final ObjectMapper mapper = new ObjectMapper();
    private final ArrayDeque<Process> ready = new ArrayDeque<>();
    private boolean closed;

    public EarlyStart(MultiLangRecordProcessorFactory stock, ExecutorService executor,
            KinesisClientLibConfiguration configuration) {
        this.command = stock.getCommandArray().clone();
        this.executor = executor;
        this.configuration = configuration;
    }

    @Override
    public IRecordProcessor createProcessor() {
        return new Processor(builder(), executor, mapper, configuration, this);
    }

    /** As the stock factory builds it, without the lifeline variable. */
    private ProcessBuilder builder() {
        return Lifeline.keepFrom(new ProcessBuilder(command));
    }

    /** Starts up to {@code count} children; returns how many started. */
    public int start(int count) {
        int started = 0;
        for (int i = 0; i < count; i++) {
            Process process;
            try {
                process = builder().start();
            } catch (IOException e) {
                Launch.say("record processors not started early (" + Launch.oneLine(e)
                        + "); each starts when its shard initializes");
                break;
            }
            synchronized (this) {
                if (closed) {
                    stop(process);
                    break;
                }
                ready.add(process);
            }
            started++;
        }
        return started;
    }

    /** A child started early, or {@code null} when none is left. */
    private synchronized Process take() {
        return closed ? null : ready.poll();
    }

    /** Stops the children no shard took; returns how many. Later processors start their own. */
    public int stopLeftovers() {
        List<Process> left;
        synchronized (this) {
            closed = true;
            left = new ArrayList<>(ready);
            ready.clear();
        }
        for (Process process : left) {
            stop(process);
        }
        return left.size();
    }

    private static void stop(Process process) {
        try {
            process.getOutputStream().close();
        } catch (IOException e) {
            // destroyed below either way
        }
        process.destroy();
    }

    /** The stock processor, whose child may have been started early. */
    static final class Processor extends MultiLangRecordProcessor {
        private final EarlyStart early;

        Processor(ProcessBuilder builder, ExecutorService executor, ObjectMapper mapper,
                KinesisClientLibConfiguration configuration, EarlyStart early) {
            super(builder, executor, mapper, configuration);
            this.early = early;
        }

        @Override
        Process startProcess() throws IOException {
            Process process = early.take();
            return process != null ? process : super.startProcess();
        }
    }
}
