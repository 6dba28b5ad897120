/*
 * kclpy-local launchers: SIGTERM and SIGINT.
 * SPDX-License-Identifier: Apache-2.0
 */
package dev.kclpylocal.common;

import java.lang.reflect.Constructor;
import java.lang.reflect.InvocationHandler;
import java.lang.reflect.Method;
import java.lang.reflect.Proxy;
import java.util.concurrent.atomic.AtomicBoolean;

/**
 * SIGTERM and SIGINT start a graceful shutdown on a thread of their own, which
 * exits the JVM with 128 + the signal number when it is done; a second signal
 * halts at once, except a SIGTERM while the {@link Lifeline} is watched: the JVM was
 * started by kclpy-local, which kills it itself when a stop takes too long, and
 * whose end brings more than one stop at once (the lifeline's end, and the SIGTERM
 * the kernel sends for it, its parent-death signal, once per thread that started the
 * JVM), which must not cut the graceful stop short. Only signals do this: when the KCL itself exits the JVM (it
 * does so when a record processor fails), no graceful shutdown is attempted,
 * since the worker that would run it is the one exiting. {@link #terminate} stops
 * as SIGTERM does for other reasons (the {@link Lifeline}). {@code sun.misc.Signal}
 * is reached by reflection, so the launcher still compiles for Java 8.
 */
final class StopSignals {
    /** SIGTERM's number on Linux and macOS. */
    static final int SIGTERM = 15;
    private static final AtomicBoolean STOPPING = new AtomicBoolean(false);
    private static volatile Thread stopper;

    private StopSignals() {
    }

    static boolean install(final Runnable graceful) {
        try {
            final Class<?> signalClass = Class.forName("sun.misc.Signal");
            Class<?> handlerClass = Class.forName("sun.misc.SignalHandler");
            final Method number = signalClass.getMethod("getNumber");
            Object handler = Proxy.newProxyInstance(handlerClass.getClassLoader(),
                    new Class<?>[] {handlerClass}, new InvocationHandler() {
                        @Override
                        public Object invoke(Object proxy, Method method, Object[] args) throws Exception {
                            if ("handle".equals(method.getName())) {
                                onSignal((Integer) number.invoke(args[0]), graceful);
                                return null;
                            }
                            if ("equals".equals(method.getName())) {
                                return proxy == args[0];
                            }
                            if ("hashCode".equals(method.getName())) {
                                return System.identityHashCode(proxy);
                            }
                            return "kclpy-local stop signals";
                        }
                    });
            Method handle = signalClass.getMethod("handle", signalClass, handlerClass);
            Constructor<?> named = signalClass.getConstructor(String.class);
            for (String name : new String[] {"TERM", "INT"}) {
                handle.invoke(null, named.newInstance(name), handler);
            }
            return true;
        } catch (ReflectiveOperationException | RuntimeException | LinkageError e) {
            return false;
        }
    }

    static void onSignal(final int signal, final Runnable graceful) {
        if (!STOPPING.compareAndSet(false, true)) {
            if (signal == SIGTERM && Lifeline.isWatched()) {
                Launch.say("SIGTERM again while stopping; the graceful stop goes on (the process that "
                        + "started this JVM ends it if it must)");
                return;
            }
            Launch.say("second stop signal; exiting now");
            Runtime.getRuntime().halt(128 + signal);
            return;
        }
        startStop(signal, graceful);
    }

    /**
     * Stops as on SIGTERM (a graceful shutdown, then exit status 143), for a reason
     * other than a signal; nothing when a stop is already in progress.
     */
    static boolean terminate(Runnable graceful) {
        if (!STOPPING.compareAndSet(false, true)) {
            return false;
        }
        startStop(SIGTERM, graceful);
        return true;
    }

    private static void startStop(final int signal, final Runnable graceful) {
        Thread thread = new Thread(new Runnable() {
            @Override
            public void run() {
                graceful.run();
                System.exit(128 + signal);
            }
        }, "kclpy-local-stop");
        stopper = thread;
        thread.start();
    }

    /** Wait for a stop in progress (it exits the JVM); return at once if there is none. */
    static void awaitStop() {
        Thread thread = stopper;
        if (thread == null) {
            return;
        }
        try {
            thread.join();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }
}
