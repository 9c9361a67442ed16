// The app's image logic in plain Java 17, without Android: tiling, blending, tensor conversions, metadata.
// `make test-java` in the repository root builds and tests it with javac and JUnit alone; this file is for Gradle.
plugins {
    `java-library`
}

tasks.withType<JavaCompile>().configureEach {
    options.release = 17
    options.compilerArgs.addAll(listOf("-Xlint:all", "-Werror"))
}

dependencies {
    testImplementation(platform(libs.junit.bom))
    testImplementation(libs.junit.jupiter)
    testRuntimeOnly(libs.junit.platform.launcher)
}

tasks.test {
    useJUnitPlatform()
}
