plugins {
    alias(libs.plugins.android.application)
    alias(libs.plugins.kotlin.compose) // AGP 9 compiles Kotlin itself: no org.jetbrains.kotlin.android
}

android {
    namespace = "dev.edgesr.demo"
    compileSdk = 36

    defaultConfig {
        applicationId = "dev.edgesr.demo"
        minSdk = 29 // scoped MediaStore writes without a storage permission
        targetSdk = 36
        versionCode = 1
        versionName = "0.1.0"
    }

    buildTypes {
        release {
            isMinifyEnabled = false
        }
    }

    compileOptions {
        sourceCompatibility = JavaVersion.VERSION_17
        targetCompatibility = JavaVersion.VERSION_17
    }

    buildFeatures {
        compose = true
    }

    androidResources {
        noCompress += "tflite" // memory-mapped straight from the APK
    }
}

dependencies {
    implementation(project(":srcore"))
    implementation(libs.litert)
    implementation(libs.litert.gpu)
    implementation(libs.litert.gpu.api)
    implementation(libs.androidx.core.ktx)
    implementation(libs.androidx.activity.compose)
    implementation(libs.androidx.lifecycle.runtime.compose)
    implementation(libs.androidx.lifecycle.viewmodel.compose)
    implementation(libs.androidx.exifinterface)
    implementation(libs.kotlinx.coroutines.android)
    implementation(platform(libs.androidx.compose.bom))
    implementation(libs.androidx.compose.ui)
    implementation(libs.androidx.compose.material3)
}
